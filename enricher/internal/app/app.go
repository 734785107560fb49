package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/enricher/internal/avroenc"
	"github.com/auditpipe/auditpipe/enricher/internal/geo"
	"github.com/auditpipe/auditpipe/enricher/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Run runs the enricher until ctx is done: it opens the geo databases,
// registers (or looks up) the Avro schema, creates the output topics when
// configured, waits for the databases, then runs the pipeline. On
// shutdown the open transaction is finished or aborted before Run returns.
// A ctx done during startup is a clean stop (nil).
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RegisterOnly {
		return registerOnly(ctx, cfg, logger)
	}
	geoEnricher, err := geo.New(cfg.Geo, logger.With(slog.String("component", "geo")), s.Metrics)
	if err != nil {
		return err
	}
	// Not ready until the pipeline consumes: registration, topics and
	// databases come first.
	var running atomic.Bool
	addCheck(s, "pipeline", func(context.Context) error {
		if !running.Load() {
			return errors.New("starting")
		}
		return nil
	})
	addCheck(s, "geo", func(context.Context) error { return geoEnricher.Ready() })
	defer runGeo(ctx, geoEnricher)()

	rcl, err := cfg.SchemaRegistry.Client("auditpipe-enricher")
	if err != nil {
		return err
	}
	enc, err := registerSchema(ctx, cfg.SchemaRegistry, rcl, logger)
	if err != nil {
		return startupError(ctx, err)
	}
	if err := createTopics(ctx, cfg, logger); err != nil {
		return startupError(ctx, err)
	}
	p, err := newPipeline(cfg, s, geoEnricher, enc, logger)
	if err != nil {
		return err
	}
	addConnectionChecks(s, rcl, enc.schemaID, p)
	stopWatch, err := watchProgress(ctx, cfg, s, p, logger)
	if err != nil {
		return err
	}
	defer stopWatch()
	return consume(ctx, cfg, p, geoEnricher, &running, logger)
}

// addConnectionChecks adds the readiness checks "registry" (the schema
// schemaID can be fetched) and "kafka" (the pipeline's client reaches a
// broker).
func addConnectionChecks(s service.Settings, rcl *sr.Client, schemaID int, p *pipeline.Pipeline) {
	addCheck(s, "registry", func(ctx context.Context) error {
		if _, err := rcl.SchemaByID(ctx, schemaID); err != nil {
			return fmt.Errorf("fetching schema %d: %w", schemaID, err)
		}
		return nil
	})
	addCheck(s, "kafka", func(ctx context.Context) error { return kafka.Ping(ctx, p.Client()) })
}

// consume waits until every geo database is loaded, then runs the
// pipeline until ctx is done, with running set meanwhile (the readiness
// check "pipeline"), and finally leaves the consumer group. A ctx done
// while waiting only closes the pipeline's session (nil).
func consume(ctx context.Context, cfg Config, p *pipeline.Pipeline, g *geo.Enricher, running *atomic.Bool, logger *slog.Logger) error {
	// Enriching without a configured database would silently lose data:
	// wait until all of them are loaded.
	if err := waitReady(ctx, logger, g); err != nil {
		return p.Run(ctx) // ctx done: Run only closes the session
	}
	running.Store(true)
	defer running.Store(false)
	logger.Info("enricher running", slog.String("input", cfg.Topics.Raw), slog.String("output", cfg.Topics.Enriched.Name),
		slog.String("group", cfg.Group), slog.String("instance_id", cfg.InstanceID), slog.String("transactional_id", cfg.TransactionalID))
	err := p.Run(ctx)
	if lerr := cfg.Membership.Leave(cfg.Kafka, cfg.Group); lerr != nil {
		logger.Warn("leaving the consumer group", slog.Any("error", lerr))
	}
	return err
}

// registerOnly registers the schema and returns: the deploy-time step.
// Unlike Run it treats a cancelled ctx as a failure, since the schema may
// not be registered.
func registerOnly(ctx context.Context, cfg Config, logger *slog.Logger) error {
	rcl, err := cfg.SchemaRegistry.Client("auditpipe-enricher")
	if err != nil {
		return err
	}
	rc := cfg.SchemaRegistry
	rc.Register = true
	_, err = registerSchema(ctx, rc, rcl, logger)
	return err
}

// watchProgress starts the group's progress watch (stall detection, the
// readiness check "progress"); the returned stop ends it and waits.
func watchProgress(ctx context.Context, cfg Config, s service.Settings, p *pipeline.Pipeline, logger *slog.Logger) (stop func(), err error) {
	watch, err := kafka.NewConsumerProgressWatch(p.Client(), kafka.ProgressConfig{
		Group: cfg.Group, Topic: cfg.Topics.Raw, StallTimeout: cfg.StallTimeout,
	}, logger, s.Metrics)
	if err != nil {
		return nil, err
	}
	addCheck(s, "progress", watch.Ready)
	return watch.Start(ctx), nil
}

// addCheck adds a readiness check when the service has an admin server.
func addCheck(s service.Settings, name string, check func(context.Context) error) {
	if s.Admin != nil {
		s.Admin.AddCheck(name, check)
	}
}

// startupError is err, or nil when ctx is done: a stop during startup is
// clean.
func startupError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// runGeo runs the geo enricher's reloads until the returned stop is
// called. Geo outlives the pipeline: defer stop, so that its readers are
// closed only after the pipeline has stopped.
func runGeo(ctx context.Context, g *geo.Enricher) (stop func()) {
	geoCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- g.Run(geoCtx) }()
	return func() { cancel(); <-done }
}

// encoder is how the pipeline encodes records under the registered schema.
type encoder struct {
	schemaID int
	encode   func(*schema.AuditLog) ([]byte, error)
	recycle  func([]byte)
}

// registerSchema registers (or, without Register, looks up) the Avro
// schema, retrying while the registry is unreachable, and returns the
// encoder for its id. A schema that is missing (lookup only) or that the
// registry rejects (an incompatible registration, HTTP 409, or a newer
// version that cannot read our records) is not retried: the enricher must
// not start, and the error says what to do.
func registerSchema(ctx context.Context, cfg SchemaRegistryConfig, rcl *sr.Client, logger *slog.Logger) (encoder, error) {
	var schemaID int
	if err := startupRetry(ctx, logger, "registering avro schema", func(ctx context.Context) error {
		var err error
		_, schemaID, err = schema.NewSerde(ctx, rcl, cfg.Subject, cfg.Register)
		if errors.Is(err, schema.ErrNotRegistered) || errors.Is(err, schema.ErrSchemaRejected) {
			return retry.Permanent(err)
		}
		return err
	}); err != nil {
		return encoder{}, err
	}
	logger.Info("avro schema ready", slog.String("subject", cfg.Subject), slog.Int("id", schemaID), slog.Bool("registered", cfg.Register))

	enc, err := avroenc.New(schemaID)
	if err != nil {
		return encoder{}, err
	}
	return encoder{schemaID: schemaID, encode: enc.EncodeBuffer, recycle: enc.Release}, nil
}

// createTopics creates the missing output topics when Topics.Create,
// retrying while the brokers are unreachable.
func createTopics(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if !cfg.Topics.Create {
		return nil
	}
	admCl, err := kafka.NewClient(cfg.Kafka, logger, nil, "enricher-admin")
	if err != nil {
		return err
	}
	defer admCl.Close()
	return startupRetry(ctx, logger, "creating topics", func(ctx context.Context) error {
		return kafka.EnsureTopics(ctx, kadm.NewClient(admCl), logger, cfg.Topics.Enriched, cfg.Topics.DLQ)
	})
}

// newPipeline builds the transactional pipeline over the processor
// (normalize, geo, encode).
func newPipeline(cfg Config, s service.Settings, g *geo.Enricher, enc encoder, logger *slog.Logger) (*pipeline.Pipeline, error) {
	sz := cfg.Sizing()
	logger.Info("sized from memory.limit", slog.String("memory_limit", cfg.Memory.Limit.String()), slog.Int("max_poll_records", sz.MaxPollRecords),
		slog.String("fetch_max_bytes", sz.Kafka.FetchMaxBytes.String()), slog.Int("max_buffered_bytes", sz.Kafka.MaxBufferedBytes))
	base, err := sz.Kafka.Options(logger, s.Metrics, "enricher")
	if err != nil {
		return nil, err
	}
	return pipeline.New(pipeline.Config{
		InputTopic:      cfg.Topics.Raw,
		OutputTopic:     cfg.Topics.Enriched.Name,
		DLQTopic:        cfg.Topics.DLQ.Name,
		Group:           cfg.Group,
		TransactionalID: cfg.TransactionalID,
		MaxPollRecords:  sz.MaxPollRecords,
		Workers:         cfg.Workers,
		EndTimeout:      cfg.TransactionEndTimeout,
		RetryBackoff:    time.Second,
	}, append(base, cfg.Membership.Options()...), &pipeline.Processor{
		Geo:            g,
		Encode:         enc.encode,
		Recycle:        enc.recycle,
		SourceTags:     cfg.SourceTags,
		MaxOutputBytes: cfg.MaxOutputBytes,
	}, logger, s.Metrics)
}

func waitReady(ctx context.Context, logger *slog.Logger, g *geo.Enricher) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 0; ; n++ {
		err := g.Ready()
		if err == nil {
			return nil
		}
		if n%30 == 0 {
			logger.Warn("waiting for geo databases", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			g.Reload()
		}
	}
}

// startupPolicy retries the startup steps that wait for the registry or
// the brokers.
var startupPolicy = retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}

// startupRetry runs op with startupPolicy until it succeeds, returns an
// error marked retry.Permanent, or ctx is done, logging each retry.
func startupRetry(ctx context.Context, logger *slog.Logger, what string, op func(context.Context) error) error {
	err := startupPolicy.Do(ctx, op, func(_ int, err error, in time.Duration) {
		logger.Warn(what+"; retrying", slog.Any("error", err), slog.Duration("in", in))
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
