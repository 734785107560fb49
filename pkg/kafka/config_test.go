package kafka_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, kafka.DefaultConfig().Validate())
}

func TestConfigValidate(t *testing.T) {
	existing := writeFile(t, "exists.pem", "x")
	missing := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name   string
		modify func(*kafka.Config)
		want   []string // substrings, each must appear; empty means valid
	}{
		{"default", func(*kafka.Config) {}, nil},
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, []string{"brokers: must list at least one broker"}},
		{"empty broker", func(c *kafka.Config) { c.Brokers = []string{"a:9092", " "} }, []string{"brokers[1]: must not be empty"}},
		{"url broker", func(c *kafka.Config) { c.Brokers = []string{"kafka://a:9092"} }, []string{"brokers[0]:", "not host:port"}},
		{"no client id", func(c *kafka.Config) { c.ClientID = "" }, []string{"client_id: must not be empty"}},
		{"bad compression", func(c *kafka.Config) { c.Compression = "brotli" }, []string{`compression: unknown codec "brotli"`}},
		{"compression any case", func(c *kafka.Config) { c.Compression = "LZ4" }, nil},
		{"zero dial timeout", func(c *kafka.Config) { c.DialTimeout = 0 }, []string{"dial_timeout: must be positive"}},
		{"negative overhead", func(c *kafka.Config) { c.RequestTimeoutOverhead = -time.Second }, []string{"request_timeout_overhead: must be positive"}},
		{"min age above max", func(c *kafka.Config) { c.MetadataMinAge = 10 * time.Minute }, []string{"metadata_min_age: must not exceed metadata_max_age"}},
		{"zero max age", func(c *kafka.Config) { c.MetadataMaxAge = 0 }, []string{"metadata_max_age: must be positive"}},
		{"negative linger", func(c *kafka.Config) { c.Linger = -1 }, []string{"linger: must not be negative"}},
		{"zero linger", func(c *kafka.Config) { c.Linger = 0 }, nil},
		{"unbounded records", func(c *kafka.Config) { c.MaxBufferedRecords = 0 }, []string{"max_buffered_records: must be positive"}},
		{"negative buffered bytes", func(c *kafka.Config) { c.MaxBufferedBytes = -1 }, []string{"max_buffered_bytes: must not be negative"}},
		{"fetch above the read limit", func(c *kafka.Config) { c.FetchMaxBytes = 200 * config.MiB }, []string{"fetch_max_bytes: must be within 0..100 MiB"}},
		{"negative partition fetch", func(c *kafka.Config) { c.FetchMaxPartitionBytes = -1 }, []string{"fetch_max_partition_bytes: must not be negative"}},
		{"partition fetch above fetch", func(c *kafka.Config) { c.FetchMaxBytes, c.FetchMaxPartitionBytes = config.MiB, 2*config.MiB }, []string{"fetch_max_partition_bytes: 2 MiB exceeds fetch_max_bytes (1 MiB)"}},
		{"explicit fetch sizes", func(c *kafka.Config) { c.FetchMaxBytes, c.FetchMaxPartitionBytes = 4*config.MiB, config.MiB }, nil},
		{"tls files without tls", func(c *kafka.Config) { c.TLS.CAFile = existing }, []string{"tls.ca_file: set but enabled is false"}},
		{"tls skip verify without tls", func(c *kafka.Config) { c.TLS.InsecureSkipVerify = true }, []string{"tls.insecure_skip_verify: set but enabled is false"}},
		{"tls plain", func(c *kafka.Config) { c.TLS.Enabled = true }, nil},
		{"tls full", func(c *kafka.Config) {
			c.TLS = kafka.TLSConfig{Enabled: true, CAFile: existing, CertFile: existing, KeyFile: existing, ServerName: "kafka"}
		}, nil},
		{"tls missing ca", func(c *kafka.Config) { c.TLS = kafka.TLSConfig{Enabled: true, CAFile: missing} }, []string{"tls.ca_file: opening", "missing.pem", "no such file"}},
		{"tls ca is a directory", func(c *kafka.Config) { c.TLS = kafka.TLSConfig{Enabled: true, CAFile: t.TempDir()} }, []string{"tls.ca_file:", "is a directory"}},
		{"tls cert without key", func(c *kafka.Config) { c.TLS = kafka.TLSConfig{Enabled: true, CertFile: existing} }, []string{"tls.key_file: must be set when cert_file is"}},
		{"tls key without cert", func(c *kafka.Config) { c.TLS = kafka.TLSConfig{Enabled: true, KeyFile: existing} }, []string{"tls.cert_file: must be set when key_file is"}},
		{"sasl unknown mechanism", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: config.NewSecret("p")}
		}, []string{`sasl.mechanism: unknown "GSSAPI"`}},
		{"sasl username without mechanism", func(c *kafka.Config) { c.SASL.Username = "u" }, []string{"sasl.username: set but mechanism is empty"}},
		{"sasl password without mechanism", func(c *kafka.Config) { c.SASL.Password = config.NewSecret("p") }, []string{"sasl.password: set but mechanism is empty"}},
		{"sasl plain ok", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: config.NewSecret("p")}
		}, nil},
		{"sasl scram lower case", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: "scram-sha-512", Username: "u", PasswordFile: existing}
		}, nil},
		{"sasl no username", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Password: config.NewSecret("p")}
		}, []string{"sasl.username: must be set for mechanism SCRAM-SHA-256"}},
		{"sasl no password", func(c *kafka.Config) { c.SASL = kafka.SASLConfig{Mechanism: "PLAIN", Username: "u"} }, []string{"sasl.password: must be set"}},
		{"sasl missing password file", func(c *kafka.Config) {
			c.SASL = kafka.SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: missing}
		}, []string{"sasl.password_file: opening", "missing.pem"}},
		{"several problems joined", func(c *kafka.Config) {
			c.Brokers = nil
			c.Compression = "x"
			c.TLS = kafka.TLSConfig{Enabled: true, CertFile: existing}
		}, []string{"brokers:", "compression:", "tls.key_file:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := kafka.DefaultConfig()
			tt.modify(&cfg)
			err := config.Validate(cfg)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestValidateNeverLeaksPassword(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.SASL = kafka.SASLConfig{Mechanism: "NOPE", Password: config.NewSecret("hunter2")}
	err := config.Validate(cfg)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestTopicSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec kafka.TopicSpec
		want []string
	}{
		{"ok", kafka.TopicSpec{Name: "openai-audit-raw", Partitions: 6, ReplicationFactor: 3}, nil},
		{"broker default rf", kafka.TopicSpec{Name: "a.b_c-D9", Partitions: 1, ReplicationFactor: -1}, nil},
		{"compact with underscores", kafka.TopicSpec{Name: "s", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup_policy": "compact,delete"}}, nil},
		{"empty name", kafka.TopicSpec{Partitions: 1, ReplicationFactor: 1}, []string{"name: must not be empty"}},
		{"dot name", kafka.TopicSpec{Name: "..", Partitions: 1, ReplicationFactor: 1}, []string{"name:", "not a valid topic name"}},
		{"bad char", kafka.TopicSpec{Name: "a/b", Partitions: 1, ReplicationFactor: 1}, []string{"name:", "'/'"}},
		{"too long", kafka.TopicSpec{Name: string(make([]byte, 250)), Partitions: 1, ReplicationFactor: 1}, []string{"name: must be at most 249"}},
		{"no partitions", kafka.TopicSpec{Name: "a", ReplicationFactor: 1}, []string{"partitions: must be at least 1"}},
		{"zero rf", kafka.TopicSpec{Name: "a", Partitions: 1}, []string{"replication_factor: must be at least 1"}},
		{"bad policy", kafka.TopicSpec{Name: "a", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compacted"}}, []string{"configs: cleanup.policy: unknown policy"}},
		{"empty config key", kafka.TopicSpec{Name: "a", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"": "x"}}, []string{"configs: key must not be empty"}},
		{"all at once", kafka.TopicSpec{}, []string{"name:", "partitions:", "replication_factor:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSized(t *testing.T) {
	tests := []struct {
		name             string
		set              func(*kafka.Config)
		fetch, produce   int64
		wantFetch, wantP config.ByteSize
		wantProduce      int
	}{
		{"no budget keeps zeros", func(*kafka.Config) {}, 0, 0, 0, 0, 0},
		{"budget fills zeros", func(*kafka.Config) {}, 8 << 20, 16 << 20, 8 * config.MiB, config.MiB, 16 << 20},
		{"small fetch share", func(*kafka.Config) {}, 1 << 20, 1 << 20, config.MiB, 256 * config.KiB, 2 << 20},
		{"tiny fetch share keeps a partition floor", func(*kafka.Config) {}, 128 << 10, 0, 128 * config.KiB, 64 * config.KiB, 0},
		{"huge share capped at the read limit", func(*kafka.Config) {}, 1 << 40, 0, kafka.MaxFetchBytes, config.MiB, 0},
		{"explicit keys win", func(c *kafka.Config) {
			c.FetchMaxBytes, c.FetchMaxPartitionBytes, c.MaxBufferedBytes = 3*config.MiB, 512*config.KiB, 5<<20
		}, 8 << 20, 16 << 20, 3 * config.MiB, 512 * config.KiB, 5 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := kafka.DefaultConfig()
			tc.set(&c)
			got := c.Sized(tc.fetch, tc.produce)
			require.Equal(t, tc.wantFetch, got.FetchMaxBytes)
			require.Equal(t, tc.wantP, got.FetchMaxPartitionBytes)
			require.Equal(t, tc.wantProduce, got.MaxBufferedBytes)
			require.NoError(t, config.Validate(got))
		})
	}
}
