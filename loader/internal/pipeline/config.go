package pipeline

import (
	"errors"
	"time"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/pkg/contract"
)

// Config configures a Pipeline.
type Config struct {
	// Topic is the enriched topic to load.
	Topic string
	// Group is the consumer group.
	Group string
	// DLQTopic receives the records that cannot be loaded.
	DLQTopic string
	// Batch is the flush policy.
	Batch batch.Policy
	// RetryBackoff and RetryBackoffMax bound the exponential backoff (with
	// jitter) between attempts after a transient failure.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// RevokeTimeout bounds flushing the partitions a rebalance takes away;
	// what is not flushed by then is left to the next owner.
	RevokeTimeout time.Duration
	// InsertConcurrency bounds the partitions inserted at once.
	InsertConcurrency int
	// DrainTimeout bounds the final flush and commit after the context
	// passed to Run is done.
	DrainTimeout time.Duration
}

// DefaultConfig returns the contract's names, the default batch policy,
// 100 ms to 10 s backoff, 20 s to flush revoked partitions and 20 s to
// drain.
func DefaultConfig() Config {
	return Config{
		Topic:             contract.TopicEnriched,
		Group:             contract.GroupLoader,
		DLQTopic:          contract.TopicDLQ,
		Batch:             batch.DefaultPolicy(),
		RetryBackoff:      100 * time.Millisecond,
		RetryBackoffMax:   10 * time.Second,
		RevokeTimeout:     20 * time.Second,
		DrainTimeout:      20 * time.Second,
		InsertConcurrency: 4,
	}
}

// Validate reports every problem in c.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == "" || c.Group == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("topic, group and dlq_topic are required"))
	}
	if c.Topic == c.DLQTopic {
		errs = append(errs, errors.New("dlq_topic must differ from topic"))
	}
	if err := c.Batch.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RetryBackoff <= 0 || c.RetryBackoffMax < c.RetryBackoff {
		errs = append(errs, errors.New("retry backoff: want 0 < retry_backoff <= retry_backoff_max"))
	}
	if c.InsertConcurrency <= 0 {
		errs = append(errs, errors.New("insert_concurrency: must be positive"))
	}
	if c.RevokeTimeout <= 0 || c.DrainTimeout <= 0 {
		errs = append(errs, errors.New("revoke_timeout and drain_timeout must be positive"))
	}
	return errors.Join(errs...)
}
