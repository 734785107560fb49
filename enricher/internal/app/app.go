package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/enricher/internal/avroenc"
	"github.com/auditpipe/auditpipe/enricher/internal/geo"
	"github.com/auditpipe/auditpipe/enricher/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Run runs the enricher until ctx is done: it opens the geo databases,
// registers (or looks up) the Avro schema, creates the output topics when
// configured, waits for the databases, then runs the pipeline. On
// shutdown the open transaction is finished or aborted before Run returns.
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RegisterOnly {
		return registerOnly(ctx, cfg, logger)
	}
	reg := s.Registry

	geoEnricher, err := geo.New(cfg.Geo, logger.With(slog.String("component", "geo")), reg)
	if err != nil {
		return err
	}
	// Not ready until the pipeline consumes: registration, topics and
	// databases come first.
	var running atomic.Bool
	if s.Admin != nil {
		s.Admin.AddCheck("pipeline", func(context.Context) error {
			if !running.Load() {
				return errors.New("starting")
			}
			return nil
		})
		s.Admin.AddCheck("geo", func(context.Context) error { return geoEnricher.Ready() })
	}
	// Geo outlives the pipeline: its readers are closed only after the
	// pipeline has stopped.
	geoCtx, stopGeo := context.WithCancel(context.WithoutCancel(ctx))
	geoDone := make(chan error, 1)
	go func() { geoDone <- geoEnricher.Run(geoCtx) }()
	defer func() { stopGeo(); <-geoDone }()

	rcl, err := cfg.Registry.Client("auditpipe-enricher")
	if err != nil {
		return err
	}
	serde, schemaID, err := prepareSchema(ctx, rcl, cfg.Registry.Subject, cfg.Registry.Register, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	// The reflection-free encoder writes the same bytes as the Serde; it is
	// used only when the embedded schema has the layout it knows.
	encode := func(l *schema.AuditLog) ([]byte, error) { return serde.Encode(*l) }
	var recycle func([]byte)
	if enc, err := avroenc.New(schemaID); err != nil {
		logger.Warn("using the generic avro encoder", slog.Any("error", err))
	} else {
		encode, recycle = enc.EncodeBuffer, enc.Release
	}

	sz := cfg.Sizing()
	logger.Info("sized from memory.limit", slog.String("memory_limit", cfg.Memory.Limit.String()), slog.Int("max_poll_records", sz.MaxPollRecords),
		slog.String("fetch_max_bytes", sz.Kafka.FetchMaxBytes.String()), slog.Int("max_buffered_bytes", sz.Kafka.MaxBufferedBytes))
	base, err := sz.Kafka.Options(logger, reg, "enricher")
	if err != nil {
		return err
	}
	if cfg.Topics.Create {
		admCl, err := kafka.NewClient(cfg.Kafka, logger, nil, "enricher-admin")
		if err != nil {
			return err
		}
		err = retry(ctx, logger, "creating topics", func() error {
			return kafka.EnsureTopics(ctx, kadm.NewClient(admCl), logger, cfg.Topics.Enriched, cfg.Topics.DLQ)
		})
		admCl.Close()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}

	p, err := pipeline.New(pipeline.Config{
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
		Geo:            geoEnricher,
		Encode:         encode,
		Recycle:        recycle,
		SourceTags:     cfg.SourceTags,
		MaxOutputBytes: cfg.MaxOutputBytes,
	}, logger, reg)
	if err != nil {
		return err
	}
	if s.Admin != nil {
		s.Admin.AddCheck("registry", func(ctx context.Context) error {
			if _, err := rcl.SchemaByID(ctx, schemaID); err != nil {
				return fmt.Errorf("fetching schema %d: %w", schemaID, err)
			}
			return nil
		})
		s.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, p.Client()) })
	}
	watch, err := kafka.NewConsumerProgressWatch(p.Client(), kafka.ProgressConfig{
		Group: cfg.Group, Topic: cfg.Topics.Raw, StallTimeout: cfg.StallTimeout,
	}, logger, reg)
	if err != nil {
		return err
	}
	if s.Admin != nil {
		s.Admin.AddCheck("progress", watch.Ready)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Go(func() { _ = watch.Run(wctx) })

	// Enriching without a configured database would silently lose data:
	// wait until all of them are loaded.
	if err := waitReady(ctx, logger, geoEnricher); err != nil {
		return p.Run(ctx) // ctx done: Run only closes the session
	}
	running.Store(true)
	defer running.Store(false)
	logger.Info("enricher running", slog.String("input", cfg.Topics.Raw), slog.String("output", cfg.Topics.Enriched.Name),
		slog.String("group", cfg.Group), slog.String("instance_id", cfg.InstanceID), slog.String("transactional_id", cfg.TransactionalID))
	err = p.Run(ctx)
	if lerr := cfg.Membership.Leave(cfg.Kafka, cfg.Group); lerr != nil {
		logger.Warn("leaving the consumer group", slog.Any("error", lerr))
	}
	return err
}

// registerOnly registers the schema and returns: the deploy-time step.
// Unlike Run it treats a cancelled ctx as a failure, since the schema may
// not be registered.
func registerOnly(ctx context.Context, cfg Config, logger *slog.Logger) error {
	rcl, err := cfg.Registry.Client("auditpipe-enricher")
	if err != nil {
		return err
	}
	_, _, err = prepareSchema(ctx, rcl, cfg.Registry.Subject, true, logger)
	return err
}

// prepareSchema registers the Avro schema under subject (or only looks it
// up when register is false), retrying while the registry is unreachable
// until ctx is done. It fails at once with schema.ErrNotRegistered when a
// look-up finds nothing.
func prepareSchema(ctx context.Context, rcl *sr.Client, subject string, register bool, logger *slog.Logger) (*sr.Serde, int, error) {
	var serde *sr.Serde
	var schemaID int
	if err := retry(ctx, logger, "registering avro schema", func() error {
		var err error
		serde, schemaID, err = schema.NewSerde(ctx, rcl, subject, register)
		if errors.Is(err, schema.ErrNotRegistered) {
			return backoffStop{err}
		}
		return err
	}); err != nil {
		return nil, 0, err
	}
	logger.Info("avro schema ready", slog.String("subject", subject), slog.Int("id", schemaID), slog.Bool("registered", register))
	return serde, schemaID, nil
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

// backoffStop marks an error retry must not retry.
type backoffStop struct{ error }

func (b backoffStop) Unwrap() error { return b.error }

// retry runs fn until it succeeds, returns a backoffStop, or ctx is done,
// backing off from 200 ms to 10 s.
func retry(ctx context.Context, logger *slog.Logger, what string, fn func() error) error {
	wait := 200 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var stop backoffStop
		if errors.As(err, &stop) {
			return fmt.Errorf("%s: %w", what, stop.error)
		}
		logger.Warn(what+"; retrying", slog.Any("error", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}
