package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Run runs the loader until ctx is done: it applies the migrations and
// installs the detections (unless disabled), then consumes, loads and
// commits; on shutdown it flushes and commits what it holds and leaves the
// group. With MigrateOnly it applies the migrations, installs the
// detections and returns.
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w, err := chwriter.New(cfg.CH, logger)
	if err != nil {
		return err
	}
	defer w.Close()

	if cfg.MigrateOnly || cfg.CH.Migrate {
		if err := migrate(ctx, w, cfg, logger); err != nil {
			return err
		}
		if cfg.MigrateOnly {
			return nil
		}
	}

	p, err := newPipeline(cfg, s, w, logger)
	if err != nil {
		return err
	}
	stopWatch, err := watchProgress(ctx, cfg, s, p, logger)
	if err != nil {
		return err
	}
	defer stopWatch()
	if s.Admin != nil {
		s.Admin.AddCheck("clickhouse", w.Ping)
		s.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, p.Client()) })
		s.Admin.AddCheck("flush", p.Ready)
	}
	logger.Info("loading", slog.String("topic", cfg.Consumer.Topic), slog.String("group", cfg.Consumer.Group),
		slog.String("instance_id", cfg.Consumer.InstanceID), slog.String("table", cfg.CH.Database+"."+schema.Table))
	err = p.Run(ctx)
	if lerr := cfg.Consumer.Membership.Leave(cfg.Kafka, cfg.Consumer.Group); lerr != nil {
		logger.Warn("leaving the consumer group", slog.Any("error", lerr))
	}
	return err
}

// newPipeline builds the consumer pipeline: its registry decoder, its
// Kafka client (with the group membership) and w as the inserter.
func newPipeline(cfg Config, s service.Settings, w *chwriter.Writer, logger *slog.Logger) (*pipeline.Pipeline, error) {
	dec, err := newDecoder(cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	sz := cfg.sizing()
	logger.Info("sized from memory.limit", slog.String("memory_limit", cfg.Memory.Limit.String()), slog.Int("batch_max_rows", sz.Batch.MaxRows),
		slog.String("batch_max_bytes", config.ByteSize(sz.Batch.MaxBytes).String()), slog.Int("insert_concurrency", sz.InsertConcurrency),
		slog.String("fetch_max_bytes", sz.Kafka.FetchMaxBytes.String()), slog.String("fetch_max_partition_bytes", sz.Kafka.FetchMaxPartitionBytes.String()))
	kopts, err := sz.Kafka.Options(logger, s.Metrics, "loader")
	if err != nil {
		return nil, fmt.Errorf("configuring kafka: %w", err)
	}
	return pipeline.New(cfg.pipelineConfig(), pipeline.Options{
		ClientOpts: append(kopts, cfg.Consumer.Membership.Options()...),
		Decoder:    dec, Inserter: w, Logger: logger, Registerer: s.Metrics,
	})
}

// watchProgress starts the group's progress watch (stall detection, the
// readiness check "progress"); the returned stop ends it and waits.
func watchProgress(ctx context.Context, cfg Config, s service.Settings, p *pipeline.Pipeline, logger *slog.Logger) (stop func(), err error) {
	watch, err := kafka.NewConsumerProgressWatch(p.Client(), kafka.ProgressConfig{
		Group: cfg.Consumer.Group, Topic: cfg.Consumer.Topic, StallTimeout: cfg.Consumer.StallTimeout,
	}, logger, s.Metrics)
	if err != nil {
		return nil, err
	}
	if s.Admin != nil {
		s.Admin.AddCheck("progress", watch.Ready)
	}
	return watch.Start(ctx), nil
}

// migrate applies the migrations, checks the table and installs the
// detections, retrying with the consumer's retry policy while ClickHouse
// is unreachable (it may start after the loader) until ctx is done. Every
// step is idempotent, so a retry repeats them all.
func migrate(ctx context.Context, w *chwriter.Writer, cfg Config, logger *slog.Logger) error {
	policy := retry.Policy{Initial: cfg.Consumer.RetryBackoff, Max: cfg.Consumer.RetryBackoffMax}
	var applied []int
	err := policy.Do(ctx, func(ctx context.Context) error {
		a, err := w.Migrate(ctx)
		applied = append(applied, a...)
		if err == nil {
			var newer []schema.Column
			if newer, err = w.CheckTable(ctx); err == nil {
				logNewerColumns(logger, newer)
				err = w.InstallDetections(ctx)
			}
		}
		if err != nil && !chwriter.Unavailable(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(_ int, err error, in time.Duration) {
		logger.Warn("migrating: clickhouse unavailable, retrying", slog.Duration("retry_in", in), slog.Any("error", err))
	})
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	if len(applied) > 0 {
		logger.Info("schema migrated", slog.Any("applied", applied))
	}
	return nil
}

// logNewerColumns says which columns of the table this release does not
// know: a newer release added them; ClickHouse fills their defaults.
func logNewerColumns(logger *slog.Logger, newer []schema.Column) {
	for _, c := range newer {
		logger.Info("the table has a column this release does not write (a newer release's migration added it); ClickHouse fills its default",
			slog.String("column", c.Name), slog.String("type", c.CHType))
	}
}

func newDecoder(c SchemaRegistryConfig) (*schema.Decoder, error) {
	cl, err := c.SchemaRegistry.Client("auditpipe-loader")
	if err != nil {
		return nil, err
	}
	return schema.NewDecoder(cl, c.MaxSchemas)
}
