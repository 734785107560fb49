package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Config is the loader's whole configuration.
type Config struct {
	// Runtime holds the log, admin and shutdown_timeout keys.
	service.Runtime `koanf:",squash"`

	Kafka          kafka.Config         `koanf:"kafka"`
	SchemaRegistry SchemaRegistryConfig `koanf:"registry"`
	Consumer       ConsumerConfig       `koanf:"consumer"`
	Batch          BatchConfig          `koanf:"batch"`
	CH             chwriter.Config      `koanf:"clickhouse"`
	// MigrateOnly applies the ClickHouse migrations, installs the
	// detections (clickhouse.detections.install) and exits (a deploy-time
	// step); clickhouse.migrate is then irrelevant.
	MigrateOnly bool `koanf:"migrate_only"`
}

// SchemaRegistryConfig is how the loader reaches the Schema Registry: the
// connection keys (urls, username, password, password_file, timeout) and
// the schema cache bound.
type SchemaRegistryConfig struct {
	schema.SchemaRegistry `koanf:",squash"`
	// MaxSchemas bounds the cached writer schemas.
	MaxSchemas int `koanf:"max_schemas"`
}

// ConsumerConfig names what the loader consumes and where dead letters go.
type ConsumerConfig struct {
	Topic           string        `koanf:"topic"`
	Group           string        `koanf:"group"`
	DLQTopic        string        `koanf:"dlq_topic"`
	RetryBackoff    time.Duration `koanf:"retry_backoff"`
	RetryBackoffMax time.Duration `koanf:"retry_backoff_max"`
	RevokeTimeout   time.Duration `koanf:"revoke_timeout"`
	// InsertConcurrency bounds the partitions inserted at once; keep it
	// at most clickhouse.max_open_conns. 0: derived from memory.limit (4
	// from 128 MiB, 2 from 64 MiB, else 1; 4 without a budget).
	InsertConcurrency int `koanf:"insert_concurrency"`
	// Membership holds instance_id (static membership), session_timeout
	// and rebalance_timeout.
	kafka.Membership `koanf:",squash"`
	// StallTimeout is how long a partition may have records to load
	// while the group's committed offset does not move before it is
	// reported as stalled (warning, metric, /readyz).
	StallTimeout time.Duration `koanf:"stall_timeout"`
}

// DefaultMemoryLimit is the loader's default budget: it fits a 256 MiB
// container.
const DefaultMemoryLimit = 256 * config.MiB

// DefaultConfig returns the defaults: admin on 127.0.0.1:9103, a 256 MiB
// memory budget, the contract's topic, group and DLQ, batches sized from
// the budget and at most 1 s old, ClickHouse over HTTP on 127.0.0.1:8123 with
// migrations at startup.
func DefaultConfig() Config {
	pc := pipeline.DefaultConfig()
	kc := kafka.DefaultConfig()
	kc.ClientID = "auditpipe-loader"
	rt := service.DefaultRuntime("127.0.0.1:9103")
	rt.Memory.Limit = DefaultMemoryLimit
	pc.Batch.MaxRows, pc.Batch.MaxBytes = 0, 0 // derived from memory.limit
	return Config{
		Runtime:        rt,
		Kafka:          kc,
		SchemaRegistry: SchemaRegistryConfig{SchemaRegistry: schema.SchemaRegistry{URLs: []string{"http://127.0.0.1:8081"}, Timeout: 10 * time.Second}, MaxSchemas: 128},
		Consumer: ConsumerConfig{Topic: pc.Topic, Group: pc.Group, DLQTopic: pc.DLQTopic, RetryBackoff: pc.RetryBackoff,
			RetryBackoffMax: pc.RetryBackoffMax, RevokeTimeout: pc.RevokeTimeout, InsertConcurrency: 0,
			Membership: kafka.DefaultMembership(), StallTimeout: 2 * time.Minute},
		Batch: BatchConfig{pc.Batch},
		CH:    chwriter.DefaultConfig(),
	}
}

// Validate checks what spans sections: the pipeline's own settings.
func (c Config) Validate() error {
	var errs []error
	if err := c.Runtime.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Consumer.InsertConcurrency < 0:
		errs = append(errs, errors.New("consumer: insert_concurrency: must not be negative (0: derived from memory.limit)"))
	case c.Batch.Validate() == nil:
		if err := c.pipelineConfig().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("consumer: %w", err))
		}
	}
	if err := c.budgetProblem(c.sizing()); err != nil && !c.MigrateOnly {
		// migrate_only runs no pipeline: its buffers are never allocated.
		errs = append(errs, err)
	}
	if err := c.Consumer.Membership.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("consumer: %w", err))
	}
	if c.Consumer.StallTimeout <= 0 {
		errs = append(errs, errors.New("consumer: stall_timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// BatchConfig is the flush policy as configured: max_rows and max_bytes at
// 0 are derived from memory.limit (see sizing).
type BatchConfig struct {
	batch.Policy `koanf:",squash"`
}

// Validate checks the keys as configured: batch.Policy's checks, with
// max_rows and max_bytes allowed to be 0.
func (c BatchConfig) Validate() error {
	var negative error
	if c.MaxRows < 0 || c.MaxBytes < 0 {
		negative = errors.New("max_rows, max_bytes: must not be negative (0: derived from memory.limit)")
	}
	p := c.Policy
	p.MaxRows, p.MaxBytes = 1, 1 // checked above
	return errors.Join(negative, p.Validate())
}

// Validate checks the registry section.
func (c SchemaRegistryConfig) Validate() error {
	errs := c.SchemaRegistry.Problems()
	if c.MaxSchemas < 0 {
		errs = append(errs, errors.New("max_schemas: must not be negative (0: the default)"))
	}
	return errors.Join(errs...)
}

func (c Config) pipelineConfig() pipeline.Config {
	s := c.sizing()
	return pipeline.Config{
		Topic: c.Consumer.Topic, Group: c.Consumer.Group, DLQTopic: c.Consumer.DLQTopic, Batch: s.Batch,
		RetryBackoff: c.Consumer.RetryBackoff, RetryBackoffMax: c.Consumer.RetryBackoffMax,
		RevokeTimeout: c.Consumer.RevokeTimeout, InsertConcurrency: s.InsertConcurrency,
		// Leave a margin of the shutdown deadline for leaving the group.
		DrainTimeout: max(c.ShutdownTimeout*3/4, time.Second),
	}
}
