package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Run runs the loader until ctx is done: it applies the migrations and
// installs the detections (unless disabled), then consumes, loads and
// commits; on shutdown it flushes and commits what it holds. With
// MigrateOnly it applies the migrations, installs the detections and
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

	dec, err := newDecoder(cfg.Registry)
	if err != nil {
		return err
	}
	sz := cfg.sizing()
	logger.Info("sized from memory.limit", "memory_limit", cfg.Memory.Limit.String(), "batch_max_rows", sz.Batch.MaxRows,
		"batch_max_bytes", config.ByteSize(sz.Batch.MaxBytes).String(), "insert_concurrency", sz.InsertConcurrency,
		"fetch_max_bytes", sz.Kafka.FetchMaxBytes.String(), "fetch_max_partition_bytes", sz.Kafka.FetchMaxPartitionBytes.String())
	kopts, err := sz.Kafka.Options(logger, s.Registry, "loader")
	if err != nil {
		return fmt.Errorf("configuring kafka: %w", err)
	}
	p, err := pipeline.New(cfg.pipelineConfig(), pipeline.Options{
		ClientOpts: append(kopts, cfg.Consumer.Membership.Options()...), Decoder: dec, Inserter: w, Logger: logger, Registerer: s.Registry,
	})
	if err != nil {
		return err
	}
	watch, err := kafka.NewConsumerProgressWatch(p.Client(), kafka.ProgressConfig{
		Group: cfg.Consumer.Group, Topic: cfg.Consumer.Topic, StallTimeout: cfg.Consumer.StallTimeout,
	}, logger, s.Registry)
	if err != nil {
		return err
	}
	if s.Admin != nil {
		s.Admin.AddCheck("clickhouse", w.Ping)
		s.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, p.Client()) })
		s.Admin.AddCheck("flush", p.Ready)
		s.Admin.AddCheck("progress", watch.Ready)
	}
	logger.Info("loading", "topic", cfg.Consumer.Topic, "group", cfg.Consumer.Group, "instance_id", cfg.Consumer.InstanceID, "table", cfg.CH.Database+"."+schema.Table)
	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Go(func() { _ = watch.Run(wctx) })
	err = p.Run(ctx)
	if lerr := cfg.Consumer.Membership.Leave(cfg.Kafka, cfg.Consumer.Group); lerr != nil {
		logger.Warn("leaving the consumer group", "error", lerr)
	}
	return err
}

// migrate applies the migrations and installs the detections, retrying
// while ClickHouse is unreachable (it may start after the loader) until ctx
// is done.
func migrate(ctx context.Context, w *chwriter.Writer, cfg Config, logger *slog.Logger) error {
	backoff := cfg.Consumer.RetryBackoff
	for {
		applied, err := w.Migrate(ctx)
		if err == nil {
			if err := w.CheckTable(ctx); err != nil {
				return err
			}
			if len(applied) > 0 {
				logger.Info("schema migrated", "applied", applied)
			}
			err = w.InstallDetections(ctx)
		}
		if err == nil {
			return nil
		}
		if chwriter.Unavailable(err) && ctx.Err() == nil {
			logger.Warn("migrating: clickhouse unavailable, retrying", "retry_in", backoff, "error", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("migrating: %w", err)
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, cfg.Consumer.RetryBackoffMax)
			continue
		}
		return fmt.Errorf("migrating: %w", err)
	}
}

func newDecoder(c RegistryConfig) (*schema.Decoder, error) {
	cl, err := c.Registry.Client("auditpipe-loader")
	if err != nil {
		return nil, err
	}
	return schema.NewDecoder(cl, c.MaxSchemas)
}
