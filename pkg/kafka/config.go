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
	// fails with kerr.MessageTooLarge.
	MaxBufferedBytes int `koanf:"max_buffered_bytes"`
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
// records, 64 MiB), 10 s dial and request overhead, kgo's metadata ages.
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
		MaxBufferedBytes:       64 << 20,
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
	if c.MaxBufferedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_buffered_bytes: must be positive, got %d", c.MaxBufferedBytes))
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
