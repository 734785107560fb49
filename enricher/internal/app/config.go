package app

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/auditpipe/auditpipe/enricher/internal/geo"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
)

// Config is the enricher's configuration.
type Config struct {
	// Runtime holds the log, admin and shutdown_timeout keys.
	service.Runtime `koanf:",squash"`

	// Kafka is the cluster connection.
	Kafka kafka.Config `koanf:"kafka"`
	// Topics are the topics read and written.
	Topics TopicsConfig `koanf:"topics"`
	// Group is the consumer group; replicas share it.
	Group string `koanf:"group"`
	// TransactionalID must be unique per replica and stable across its
	// restarts (e.g. the pod name of a StatefulSet).
	TransactionalID string `koanf:"transactional_id"`
	// Membership holds instance_id (static membership), session_timeout
	// and rebalance_timeout.
	kafka.Membership `koanf:",squash"`
	// StallTimeout is how long a partition of the raw topic may have
	// records to enrich while the group's committed offset does not move
	// before it is reported as stalled (warning, metric, /readyz).
	StallTimeout time.Duration `koanf:"stall_timeout"`
	// MaxPollRecords bounds the records per transaction. 0: derived from
	// memory.limit (at most 5000; see Sizing).
	MaxPollRecords int `koanf:"max_poll_records"`
	// Workers transform one batch in parallel (0: one per CPU but one,
	// which the producer's compression needs; at least 1).
	Workers int `koanf:"workers"`
	// TransactionEndTimeout bounds one transaction from its first produce
	// to its end (transform, flush, commit), also at shutdown.
	TransactionEndTimeout time.Duration `koanf:"transaction_end_timeout"`
	// MaxOutputBytes bounds an encoded record; larger ones are
	// dead-lettered (keep it under the enriched topic's max.message.bytes).
	MaxOutputBytes int `koanf:"max_output_bytes"`
	// SchemaRegistry is the Confluent-compatible Schema Registry (YAML
	// section registry).
	SchemaRegistry SchemaRegistryConfig `koanf:"registry"`
	// Geo selects the MaxMind databases.
	Geo geo.Config `koanf:"geo"`
	// SourceTags are static tags added to every record of a source, by
	// source_id.
	SourceTags map[string]map[string]string `koanf:"source_tags"`
	// RegisterOnly registers the Avro schema (whatever registry.register
	// says) and exits: the deploy-time step before enrichers that run with
	// registry.register false.
	RegisterOnly bool `koanf:"register_only"`
}

// TopicsConfig names the topics.
type TopicsConfig struct {
	// Raw is the input topic the poller writes.
	Raw string `koanf:"raw"`
	// Enriched is the output topic; created with this spec when Create.
	Enriched kafka.TopicSpec `koanf:"enriched"`
	// DLQ is the dead-letter topic; created with this spec when Create.
	DLQ kafka.TopicSpec `koanf:"dlq"`
	// Create creates missing output topics at startup.
	Create bool `koanf:"create"`
}

// SchemaRegistryConfig configures the schema registry: the connection keys
// (urls, username, password, password_file, timeout) and the subject.
type SchemaRegistryConfig struct {
	schema.SchemaRegistry `koanf:",squash"`
	// Subject holds the enriched value schema (TopicNameStrategy).
	Subject string `koanf:"subject"`
	// Register registers the schema at startup (idempotent, sets BACKWARD
	// compatibility); false only looks it up and fails if it is missing.
	Register bool `koanf:"register"`
}

// Validate checks the registry fields.
func (c SchemaRegistryConfig) Validate() error {
	errs := c.SchemaRegistry.Problems()
	if c.Subject == "" {
		errs = append(errs, errors.New("subject: must not be empty"))
	}
	return errors.Join(errs...)
}

// Validate checks the topic names.
func (c TopicsConfig) Validate() error {
	var errs []error
	if c.Raw == "" {
		errs = append(errs, errors.New("raw: must not be empty"))
	}
	if c.Raw != "" && (c.Raw == c.Enriched.Name || c.Raw == c.DLQ.Name) {
		errs = append(errs, errors.New("raw: must differ from enriched and dlq"))
	}
	if c.Enriched.Name != "" && c.Enriched.Name == c.DLQ.Name {
		errs = append(errs, errors.New("dlq: must differ from enriched"))
	}
	return errors.Join(errs...)
}

// DefaultMemoryLimit is the enricher's default budget: it fits a 128 MiB
// container.
const DefaultMemoryLimit = 128 * config.MiB

// DefaultConfig returns the dev-stack defaults: local Kafka and registry,
// the contract's names, no geo databases.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "local"
	}
	rt := service.DefaultRuntime("127.0.0.1:9102")
	rt.Memory.Limit = DefaultMemoryLimit
	return Config{
		Runtime: rt,
		Kafka:   kafka.DefaultConfig(),
		Topics: TopicsConfig{
			Raw:      contract.TopicRaw,
			Enriched: kafka.TopicSpec{Name: contract.TopicEnriched, Partitions: 6, ReplicationFactor: -1},
			DLQ:      kafka.TopicSpec{Name: contract.TopicDLQ, Partitions: 1, ReplicationFactor: -1},
			Create:   true,
		},
		Group:                 contract.GroupEnricher,
		TransactionalID:       contract.GroupEnricher + "-" + host,
		Membership:            kafka.DefaultMembership(),
		StallTimeout:          2 * time.Minute,
		MaxPollRecords:        0, // derived from memory.limit
		TransactionEndTimeout: 20 * time.Second,
		MaxOutputBytes:        1_000_000,
		SchemaRegistry: SchemaRegistryConfig{
			SchemaRegistry: schema.SchemaRegistry{URLs: []string{"http://127.0.0.1:8081"}, Timeout: 10 * time.Second},
			Subject:        contract.SubjectEnriched,
			Register:       true,
		},
		Geo: geo.DefaultConfig(),
	}
}

// Validate checks the enricher's own fields; nested sections check
// themselves.
func (c Config) Validate() error {
	var errs []error
	if err := c.Runtime.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: must not be empty"))
	}
	if c.TransactionalID == "" {
		errs = append(errs, errors.New("transactional_id: must not be empty"))
	}
	if c.MaxPollRecords < 0 || c.MaxPollRecords > maxPollRecordsUp {
		errs = append(errs, fmt.Errorf("max_poll_records: must be 0..100000 (0: derived from memory.limit), got %d", c.MaxPollRecords))
	} else if err := c.budgetProblem(); err != nil && !c.RegisterOnly {
		// register_only runs no pipeline: its buffers are never allocated.
		errs = append(errs, err)
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("workers: must not be negative"))
	}
	if c.TransactionEndTimeout <= 0 {
		errs = append(errs, errors.New("transaction_end_timeout: must be positive"))
	} else if c.ShutdownTimeout > 0 && c.TransactionEndTimeout >= c.ShutdownTimeout {
		errs = append(errs, fmt.Errorf("transaction_end_timeout: must be below shutdown_timeout (%s) so the open transaction can end", c.ShutdownTimeout))
	}
	if err := c.Membership.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.StallTimeout <= 0 {
		errs = append(errs, errors.New("stall_timeout: must be positive"))
	}
	if c.MaxOutputBytes < 0 {
		errs = append(errs, errors.New("max_output_bytes: must not be negative"))
	}
	return errors.Join(errs...)
}
