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
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
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
	var serde *sr.Serde
	var schemaID int
	if err := startupRetry(ctx, logger, "registering avro schema", func(ctx context.Context) error {
		var err error
		serde, schemaID, err = schema.NewSerde(ctx, rcl, cfg.Registry.Subject, cfg.Registry.Register)
		if errors.Is(err, schema.ErrNotRegistered) {
			return retry.Permanent(err)
		}
		return err
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	logger.Info("avro schema ready", slog.String("subject", cfg.Registry.Subject), slog.Int("id", schemaID), slog.Bool("registered", cfg.Registry.Register))

	// The reflection-free encoder writes the same bytes as the Serde; it is
	// used only when the embedded schema has the layout it knows.
	encode := func(l *schema.AuditLog) ([]byte, error) { return serde.Encode(*l) }
	var recycle func([]byte)
	if enc, err := avroenc.New(schemaID); err != nil {
		logger.Warn("using the generic avro encoder", slog.Any("error", err))
	} else {
		encode, recycle = enc.EncodeBuffer, enc.Release
	}

	base, err := cfg.Kafka.Options(logger, reg, "enricher")
	if err != nil {
		return err
	}
	if cfg.Topics.Create {
		admCl, err := kafka.NewClient(cfg.Kafka, logger, nil, "enricher-admin")
		if err != nil {
			return err
		}
		err = startupRetry(ctx, logger, "creating topics", func(ctx context.Context) error {
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
		MaxPollRecords:  cfg.MaxPollRecords,
		Workers:         cfg.Workers,
		EndTimeout:      cfg.TransactionEndTimeout,
		RetryBackoff:    time.Second,
	}, base, &pipeline.Processor{
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

	// Enriching without a configured database would silently lose data:
	// wait until all of them are loaded.
	if err := waitReady(ctx, logger, geoEnricher); err != nil {
		return p.Run(ctx) // ctx done: Run only closes the session
	}
	running.Store(true)
	defer running.Store(false)
	logger.Info("enricher running", slog.String("input", cfg.Topics.Raw), slog.String("output", cfg.Topics.Enriched.Name),
		slog.String("group", cfg.Group), slog.String("transactional_id", cfg.TransactionalID))
	return p.Run(ctx)
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
