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
	"github.com/auditpipe/auditpipe/pkg/telemetry"
)

// Config is the loader's whole configuration.
type Config struct {
	Log             telemetry.LogConfig   `koanf:"log"`
	Admin           telemetry.AdminConfig `koanf:"admin"`
	ShutdownTimeout time.Duration         `koanf:"shutdown_timeout"`

	Kafka    kafka.Config    `koanf:"kafka"`
	Registry RegistryConfig  `koanf:"registry"`
	Consumer ConsumerConfig  `koanf:"consumer"`
	Batch    batch.Policy    `koanf:"batch"`
	CH       chwriter.Config `koanf:"clickhouse"`
	// MigrateOnly applies the ClickHouse migrations and exits (a
	// deploy-time step); clickhouse.migrate is then irrelevant.
	MigrateOnly bool `koanf:"migrate_only"`
}

// RegistryConfig is how the loader reaches the Schema Registry.
type RegistryConfig struct {
	// URLs of the registry.
	URLs []string `koanf:"urls"`
	// Username and Password for HTTP basic auth (optional).
	Username     string        `koanf:"username"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
	// Timeout bounds one registry request.
	Timeout time.Duration `koanf:"timeout"`
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
	// at most clickhouse.max_open_conns.
	InsertConcurrency int `koanf:"insert_concurrency"`
}

// DefaultConfig returns the defaults: admin on 127.0.0.1:9103, the
// contract's topic, group and DLQ, batches of 100,000 rows / 64 MiB / 1 s,
// ClickHouse native on 127.0.0.1:9000 with migrations at startup.
func DefaultConfig() Config {
	rt := service.DefaultRuntime("127.0.0.1:9103")
	pc := pipeline.DefaultConfig()
	kc := kafka.DefaultConfig()
	kc.ClientID = "auditpipe-loader"
	return Config{
		Log: rt.Log, Admin: rt.Admin, ShutdownTimeout: rt.ShutdownTimeout,
		Kafka:    kc,
		Registry: RegistryConfig{URLs: []string{"http://127.0.0.1:8081"}, Timeout: 10 * time.Second, MaxSchemas: 128},
		Consumer: ConsumerConfig{Topic: pc.Topic, Group: pc.Group, DLQTopic: pc.DLQTopic, RetryBackoff: pc.RetryBackoff,
			RetryBackoffMax: pc.RetryBackoffMax, RevokeTimeout: pc.RevokeTimeout, InsertConcurrency: pc.InsertConcurrency},
		Batch: pc.Batch,
		CH:    chwriter.DefaultConfig(),
	}
}

// RuntimeConfig implements service.Config.
func (c Config) RuntimeConfig() service.Runtime {
	return service.Runtime{Log: c.Log, Admin: c.Admin, ShutdownTimeout: c.ShutdownTimeout}
}

// Validate checks what spans sections: the pipeline's own settings.
func (c Config) Validate() error {
	var errs []error
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_timeout: must be positive"))
	}
	if err := c.pipelineConfig().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("consumer: %w", err))
	}
	return errors.Join(errs...)
}

// Connection returns the fields that reach the registry.
func (c RegistryConfig) Connection() schema.Registry {
	return schema.Registry{URLs: c.URLs, Username: c.Username, Password: c.Password, Timeout: c.Timeout, UserAgent: "auditpipe-loader"}
}

// Validate checks the registry section.
func (c RegistryConfig) Validate() error {
	errs := c.Connection().Problems()
	if c.MaxSchemas < 0 {
		errs = append(errs, errors.New("max_schemas: must not be negative (0: the default)"))
	}
	return errors.Join(errs...)
}

func (c Config) pipelineConfig() pipeline.Config {
	return pipeline.Config{
		Topic: c.Consumer.Topic, Group: c.Consumer.Group, DLQTopic: c.Consumer.DLQTopic, Batch: c.Batch,
		RetryBackoff: c.Consumer.RetryBackoff, RetryBackoffMax: c.Consumer.RetryBackoffMax,
		RevokeTimeout: c.Consumer.RevokeTimeout, InsertConcurrency: c.Consumer.InsertConcurrency,
		// Leave a margin of the shutdown deadline for leaving the group.
		DrainTimeout: max(c.ShutdownTimeout*3/4, time.Second),
	}
}
