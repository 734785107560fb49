package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/auditpipe/auditpipe/pkg/config"
)

// MetricsNamespace and MetricsSubsystem prefix every client metric:
// auditpipe_kafka_<name>{component="..."}.
const (
	MetricsNamespace = "auditpipe"
	MetricsSubsystem = "kafka"
	// ComponentLabel is the constant label that tells apart the clients
	// sharing one registerer.
	ComponentLabel = "component"
)

// Options validates c and returns the base kgo options for it: seed
// brokers, client id, timeouts and metadata ages, TLS, SASL, logging and
// metrics, acks=all with kgo's default idempotence, compression, bounded
// producer buffering and fetch sizes (the defaults for bounds left at 0;
// see Config.Sized). Options added after these override them.
//
// logger receives the library's messages with kgo's info and debug lines
// one level down (info as debug, debug below debug); nil discards them.
// reg receives the client's kprom metrics, namespaced
// auditpipe_kafka_* with the constant label component=<component>
// (produce and fetch metrics count records, batches and both byte sizes
// per topic); nil
// disables metrics. component must be unique among the live clients that
// share reg: a second client with the same component would collide on
// registration, which Options can only log (NewClient returns it as an
// error). Closing a client unregisters its metrics.
func (c Config) Options(logger *slog.Logger, reg prometheus.Registerer, component string) ([]kgo.Opt, error) {
	opts, _, err := c.options(logger, reg, component)
	return opts, err
}

// NewClient builds a client from cfg, the base Options and extra (which
// override the base). It does not contact the brokers: use Ping for
// readiness. The caller owns the client and must Close it.
func NewClient(cfg Config, logger *slog.Logger, reg prometheus.Registerer, component string, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, guard, err := cfg.options(logger, reg, component)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client %q: %w", component, err)
	}
	if guard != nil {
		if err := guard.error(); err != nil {
			cl.Close()
			return nil, fmt.Errorf("creating kafka client %q: registering metrics (is component unique per registry?): %w", component, err)
		}
	}
	return cl, nil
}

// Ping reports whether cl reaches a broker: it asks one for metadata and
// returns the error, if any. It is cheap enough for a readiness probe; bound
// it with ctx.
func Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("pinging kafka: %w", err)
	}
	return nil
}

// options is Options, also returning the guard that kprom registers the
// client's metrics through (nil without reg), which reports collisions.
func (c Config) options(logger *slog.Logger, reg prometheus.Registerer, component string) ([]kgo.Opt, *registerGuard, error) {
	if err := c.validateFor(component); err != nil {
		return nil, nil, err
	}
	opts := c.baseOptions()
	sec, err := c.securityOptions()
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, sec...)

	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lower := slog.New(demoteHandler{logger.Handler()}).With(slog.String("kafka_client", component))
	opts = append(opts, kgo.WithLogger(kslog.New(lower)))

	var guard *registerGuard
	if reg != nil {
		guard = &registerGuard{Registerer: reg, logger: logger, component: component}
		opts = append(opts, kgo.WithHooks(clientMetrics(guard, component)))
	}
	return opts, guard, nil
}

// validateFor reports every problem of c and component, joined.
func (c Config) validateFor(component string) error {
	var errs []error
	if strings.TrimSpace(component) == "" {
		errs = append(errs, errors.New("component: must not be empty"))
	}
	if err := config.Validate(c); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("validating kafka config: %w", err)
	}
	return nil
}

// baseOptions returns the connection, producer and fetch options of a
// validated c (bounds left at 0 take their defaults).
func (c Config) baseOptions() []kgo.Opt {
	codecs, _ := compressionCodecs(c.Compression) // validated by validateFor
	return []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		kgo.RequestTimeoutOverhead(c.RequestTimeoutOverhead),
		kgo.MetadataMaxAge(c.MetadataMaxAge),
		kgo.MetadataMinAge(c.MetadataMinAge),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codecs...),
		kgo.ProducerLinger(c.Linger),
		kgo.FetchMaxWait(c.FetchMaxWait),
		kgo.MaxBufferedRecords(c.MaxBufferedRecords),
		kgo.MaxBufferedBytes(cmp.Or(c.MaxBufferedBytes, DefaultMaxBufferedBytes)),
		kgo.FetchMaxBytes(int32(cmp.Or(c.FetchMaxBytes, DefaultFetchMaxBytes))), //nolint:gosec // validated: at most 100 MiB
		kgo.FetchMaxPartitionBytes(int32(cmp.Or(c.FetchMaxPartitionBytes, DefaultFetchMaxPartitionBytes))), //nolint:gosec // at most fetch_max_bytes
	}
}

// securityOptions returns the TLS and SASL options c enables (none when
// neither is). It fails when the TLS files cannot be loaded or the SASL
// mechanism cannot be built (e.g. an unreadable password file).
func (c Config) securityOptions() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if c.TLS.Enabled {
		tc, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mech, err := c.SASL.mechanism(); err != nil {
		return nil, err
	} else if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// clientMetrics returns the kprom hooks of one client, registered through
// reg with the constant label component.
func clientMetrics(reg prometheus.Registerer, component string) *kprom.Metrics {
	return kprom.NewMetrics(MetricsNamespace,
		kprom.Registerer(reg),
		kprom.Subsystem(MetricsSubsystem),
		kprom.WithStaticLabel(prometheus.Labels{ComponentLabel: component}),
		kprom.FetchAndProduceDetail(kprom.ByTopic, kprom.Records, kprom.Batches,
			kprom.UncompressedBytes, kprom.CompressedBytes, kprom.ConsistentNaming),
	)
}

// compressionCodecs returns kgo's preference list for name: the codec, then
// none for brokers too old for it (zstd needs Kafka 2.1).
func compressionCodecs(name string) ([]kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case CompressionNone:
		return []kgo.CompressionCodec{kgo.NoCompression()}, nil
	case CompressionGzip:
		return []kgo.CompressionCodec{kgo.GzipCompression(), kgo.NoCompression()}, nil
	case CompressionSnappy:
		return []kgo.CompressionCodec{kgo.SnappyCompression(), kgo.NoCompression()}, nil
	case CompressionLz4:
		return []kgo.CompressionCodec{kgo.Lz4Compression(), kgo.NoCompression()}, nil
	case CompressionZstd:
		return []kgo.CompressionCodec{kgo.ZstdCompression(), kgo.NoCompression()}, nil
	default:
		return nil, fmt.Errorf("unknown codec %q, want none, gzip, snappy, lz4 or zstd", name)
	}
}

// mechanism returns the SASL mechanism for c, or nil without SASL. The
// password comes from Password, else from PasswordFile (trailing newline
// dropped), so a Config built without the loader still works.
func (c SASLConfig) mechanism() (sasl.Mechanism, error) {
	mech, _ := normalizeMechanism(c.Mechanism)
	if mech == "" {
		return nil, nil
	}
	pass := c.Password.Value()
	if !c.Password.IsSet() && c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading sasl.password_file: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	switch mech {
	case MechanismPlain:
		return plain.Auth{User: c.Username, Pass: pass}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: c.Username, Pass: pass}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: c.Username, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl.mechanism: unknown %q", c.Mechanism)
}
