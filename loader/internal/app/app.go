package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Run runs the loader until ctx is done: it applies the migrations (unless
// disabled), then consumes, loads and commits; on shutdown it flushes and
// commits what it holds. With MigrateOnly it applies the migrations and
// returns.
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	logger := s.Logger
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

	dec, err := newDecoder(cfg.SchemaRegistry)
	if err != nil {
		return err
	}
	kopts, err := cfg.Kafka.Options(logger, s.Metrics, "loader")
	if err != nil {
		return fmt.Errorf("configuring kafka: %w", err)
	}
	p, err := pipeline.New(cfg.pipelineConfig(), pipeline.Options{
		ClientOpts: kopts, Decoder: dec, Inserter: w, Logger: logger, Registerer: s.Metrics,
	})
	if err != nil {
		return err
	}
	if s.Admin != nil {
		s.Admin.AddCheck("clickhouse", w.Ping)
		s.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, p.Client()) })
		s.Admin.AddCheck("flush", p.Ready)
	}
	logger.Info("loading", slog.String("topic", cfg.Consumer.Topic), slog.String("group", cfg.Consumer.Group), slog.String("table", cfg.CH.Database+"."+schema.Table))
	return p.Run(ctx)
}

// migrate applies the migrations, retrying with the consumer's retry
// policy while ClickHouse is unreachable (it may start after the loader)
// until ctx is done.
func migrate(ctx context.Context, w *chwriter.Writer, cfg Config, logger *slog.Logger) error {
	policy := retry.Policy{Initial: cfg.Consumer.RetryBackoff, Max: cfg.Consumer.RetryBackoffMax}
	var applied []int
	err := policy.Do(ctx, func(ctx context.Context) error {
		var err error
		applied, err = w.Migrate(ctx)
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
	if err := w.CheckTable(ctx); err != nil {
		return err
	}
	if len(applied) > 0 {
		logger.Info("schema migrated", slog.Any("applied", applied))
	}
	return nil
}

func newDecoder(c SchemaRegistryConfig) (*schema.Decoder, error) {
	cl, err := c.SchemaRegistry.Client("auditpipe-loader")
	if err != nil {
		return nil, err
	}
	return schema.NewDecoder(cl, c.MaxSchemas)
}
