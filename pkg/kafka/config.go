package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/tlsclient"
)

// SASL mechanisms accepted in SASLConfig.Mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Compression codecs accepted in Config.Compression.
const (
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	CompressionSnappy = "snappy"
	CompressionLz4    = "lz4"
	CompressionZstd   = "zstd"
)

// Config is how a service reaches its Kafka cluster. The zero value is not
// usable: start from DefaultConfig and override.
type Config struct {
	// Brokers are the seed brokers, host:port. A missing port means 9092.
	Brokers []string `koanf:"brokers"`
	// ClientID is sent to the brokers (quotas, broker logs, ACL audits).
	ClientID string `koanf:"client_id"`
	// TLS configures encryption and client certificates.
	TLS TLSConfig `koanf:"tls"`
	// SASL configures authentication.
	SASL SASLConfig `koanf:"sasl"`
	// Compression is the producer batch codec: none, gzip, snappy, lz4 or
	// zstd. Brokers too old for the codec get uncompressed batches.
	Compression string `koanf:"compression"`
	// DialTimeout bounds opening a connection to a broker.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// RequestTimeoutOverhead is added to a request's own timeout to bound
	// how long the client waits for the broker's answer.
	RequestTimeoutOverhead time.Duration `koanf:"request_timeout_overhead"`
	// MetadataMaxAge is how often metadata is refreshed when nothing
	// forces it (new partitions, moved leaders).
	MetadataMaxAge time.Duration `koanf:"metadata_max_age"`
	// MetadataMinAge is the least time between two metadata refreshes; it
	// also delays retries after leadership errors, so tests lower it.
	MetadataMinAge time.Duration `koanf:"metadata_min_age"`
	// Linger is how long a partition's batch waits for more records.
	Linger time.Duration `koanf:"linger"`
	// FetchMaxWait bounds how long a broker holds a fetch that has no data
	// yet. Records produced in a transaction become readable for
	// read_committed consumers only when it commits, and a broker may not
	// wake a waiting fetch then (kfake does not), so this is the worst-case
	// extra delay per hop; kgo's default is 5s.
	FetchMaxWait time.Duration `koanf:"fetch_max_wait"`
	// MaxBufferedRecords bounds the records a producer holds in memory;
	// Produce blocks once it is reached (backpressure).
	MaxBufferedRecords int `koanf:"max_buffered_records"`
	// MaxBufferedBytes bounds the record bytes a producer holds in memory;
	// Produce blocks once it is reached. A single record larger than this
	// fails with kerr.MessageTooLarge. 0: sized by the service from its
	// memory budget (Sized), DefaultMaxBufferedBytes without one.
	MaxBufferedBytes int `koanf:"max_buffered_bytes"`
	// FetchMaxBytes bounds the bytes of one fetch response (compressed, as
	// sent). The client holds one fetched response per broker until it is
	// consumed, decompressed, so a consumer's fetch memory is about
	// brokers x FetchMaxBytes x the compression ratio. A broker still
	// returns a whole record batch larger than this. 0: sized by the
	// service from its memory budget (Sized), DefaultFetchMaxBytes without
	// one.
	FetchMaxBytes config.ByteSize `koanf:"fetch_max_bytes"`
	// FetchMaxPartitionBytes bounds one partition's share of a fetch. 0:
	// sized with FetchMaxBytes, DefaultFetchMaxPartitionBytes without a
	// budget.
	FetchMaxPartitionBytes config.ByteSize `koanf:"fetch_max_partition_bytes"`
}

// Buffer bounds used when neither the configuration nor a memory budget
// sets them: franz-go's fetch defaults and a 64 MiB producer buffer.
const (
	DefaultFetchMaxBytes          = 50 * config.MiB
	DefaultFetchMaxPartitionBytes = 1 * config.MiB
	DefaultMaxBufferedBytes       = 64 << 20
	// MaxFetchBytes is the largest fetch_max_bytes: franz-go refuses
	// responses above its default broker read limit of 100 MiB.
	MaxFetchBytes = 100 * config.MiB
	// minBufferedBytes keeps room for the largest record the services
	// produce (1 MB).
	minBufferedBytes = 2 << 20
)

// Sized returns c with the buffer bounds left at 0 set from a memory
// budget: fetch bytes for FetchMaxBytes (and a quarter of it, within
// 64 KiB..1 MiB, for FetchMaxPartitionBytes), produce bytes for
// MaxBufferedBytes (at least 2 MiB, so the largest record fits). Bounds
// set explicitly are kept. A non-positive share leaves its bounds alone
// (Options then applies the defaults).
func (c Config) Sized(fetch, produce int64) Config {
	if fetch > 0 {
		fetch = min(fetch, MaxFetchBytes.Bytes())
		if c.FetchMaxBytes == 0 {
			c.FetchMaxBytes = config.ByteSize(fetch)
		}
		if c.FetchMaxPartitionBytes == 0 {
			c.FetchMaxPartitionBytes = min(max(c.FetchMaxBytes/4, 64*config.KiB), config.MiB)
		}
	}
	if produce > 0 && c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = int(max(produce, minBufferedBytes))
	}
	return c
}

// TLSConfig configures TLS to the brokers; see package tlsclient.
type TLSConfig = tlsclient.Config

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `koanf:"mechanism"`
	// Username is the SASL user.
	Username string `koanf:"username"`
	// Password is the SASL password; set it from the environment or
	// through PasswordFile, never in a YAML file.
	Password config.Secret `koanf:"password"`
	// PasswordFile names a file holding the password (the configuration
	// loader reads it into Password; a trailing newline is dropped).
	PasswordFile string `koanf:"password_file"`
}

// DefaultConfig returns the configuration for a local broker with safe
// production values: zstd compression, bounded producer buffering (10,000
// records; the bytes and the fetch sizes are left to Sized), 10 s dial and
// request overhead, kgo's metadata ages.
func DefaultConfig() Config {
	return Config{
		Brokers:                []string{"127.0.0.1:9092"},
		ClientID:               "auditpipe",
		Compression:            CompressionZstd,
		DialTimeout:            10 * time.Second,
		RequestTimeoutOverhead: 10 * time.Second,
		MetadataMaxAge:         5 * time.Minute,
		MetadataMinAge:         5 * time.Second,
		Linger:                 10 * time.Millisecond,
		FetchMaxWait:           500 * time.Millisecond,
		MaxBufferedRecords:     10_000,
	}
}

// Validate reports every problem in c, joined, each naming its field
// relative to c (for example "tls.cert_file: ..."). It also validates the
// nested tls and sasl sections.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: must list at least one broker"))
	}
	for i, b := range c.Brokers {
		if err := validateBroker(b); err != nil {
			errs = append(errs, fmt.Errorf("brokers[%d]: %w", i, err))
		}
	}
	if strings.TrimSpace(c.ClientID) == "" {
		errs = append(errs, errors.New("client_id: must not be empty"))
	}
	if _, err := compressionCodecs(c.Compression); err != nil {
		errs = append(errs, fmt.Errorf("compression: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"dial_timeout", c.DialTimeout},
		{"request_timeout_overhead", c.RequestTimeoutOverhead},
		{"metadata_max_age", c.MetadataMaxAge},
		{"metadata_min_age", c.MetadataMinAge},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.name, d.v))
		}
	}
	if c.MetadataMinAge > 0 && c.MetadataMaxAge > 0 && c.MetadataMinAge > c.MetadataMaxAge {
		errs = append(errs, fmt.Errorf("metadata_min_age: must not exceed metadata_max_age (%s), got %s", c.MetadataMaxAge, c.MetadataMinAge))
	}
	if c.FetchMaxWait <= 0 {
		errs = append(errs, fmt.Errorf("fetch_max_wait: must be positive, got %s", c.FetchMaxWait))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("linger: must not be negative, got %s", c.Linger))
	}
	if c.MaxBufferedRecords <= 0 {
		errs = append(errs, fmt.Errorf("max_buffered_records: must be positive, got %d", c.MaxBufferedRecords))
	}
	if c.MaxBufferedBytes < 0 {
		errs = append(errs, fmt.Errorf("max_buffered_bytes: must not be negative (0: sized from memory.limit), got %d", c.MaxBufferedBytes))
	}
	if c.FetchMaxBytes < 0 || c.FetchMaxBytes > MaxFetchBytes {
		errs = append(errs, fmt.Errorf("fetch_max_bytes: must be within 0..%s (0: sized from memory.limit), got %s", MaxFetchBytes, c.FetchMaxBytes))
	}
	if c.FetchMaxPartitionBytes < 0 {
		errs = append(errs, fmt.Errorf("fetch_max_partition_bytes: must not be negative (0: sized from memory.limit), got %s", c.FetchMaxPartitionBytes))
	}
	if c.FetchMaxBytes > 0 && c.FetchMaxPartitionBytes > c.FetchMaxBytes {
		errs = append(errs, fmt.Errorf("fetch_max_partition_bytes: %s exceeds fetch_max_bytes (%s)", c.FetchMaxPartitionBytes, c.FetchMaxBytes))
	}
	// tls and sasl validate themselves: config.Validate walks the tree.
	return errors.Join(errs...)
}

// Validate reports every problem in c, joined, each naming its field.
func (c SASLConfig) Validate() error {
	var errs []error
	mech, known := normalizeMechanism(c.Mechanism)
	switch {
	case !known:
		errs = append(errs, fmt.Errorf("mechanism: unknown %q, want one of %s, %s, %s or empty",
			c.Mechanism, MechanismPlain, MechanismScramSHA256, MechanismScramSHA512))
	case mech == "":
		if c.Username != "" {
			errs = append(errs, errors.New("username: set but mechanism is empty"))
		}
		if c.Password.IsSet() || c.PasswordFile != "" {
			errs = append(errs, errors.New("password: set but mechanism is empty"))
		}
	default:
		if c.Username == "" {
			errs = append(errs, fmt.Errorf("username: must be set for mechanism %s", mech))
		}
		if !c.Password.IsSet() && c.PasswordFile == "" {
			errs = append(errs, fmt.Errorf("password: must be set (or password_file) for mechanism %s", mech))
		}
	}
	if c.PasswordFile != "" {
		if err := config.ReadableFile(c.PasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("password_file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// normalizeMechanism returns the canonical spelling of m and whether it is
// known; matching is case-insensitive.
func normalizeMechanism(m string) (string, bool) {
	switch up := strings.ToUpper(strings.TrimSpace(m)); up {
	case "", MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		return up, true
	default:
		return m, false
	}
}

func validateBroker(b string) error {
	switch {
	case strings.TrimSpace(b) == "":
		return errors.New("must not be empty")
	case strings.ContainsAny(b, " \t\n/"):
		return fmt.Errorf("%q is not host:port", b)
	}
	return nil
}
