package collect

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaCommitter commits through a transactional kgo client (one per
// source, transactional id auditpipe-poller-<source_id>). It is not safe
// for concurrent use.
type KafkaCommitter struct {
	cl *kgo.Client
	// endTimeout bounds ending a transaction after ctx is done.
	endTimeout time.Duration
}

// NewKafkaCommitter returns a committer over cl, which must have been built
// with kgo.TransactionalID.
func NewKafkaCommitter(cl *kgo.Client, endTimeout time.Duration) *KafkaCommitter {
	return &KafkaCommitter{cl: cl, endTimeout: endTimeout}
}

// Commit begins a transaction, produces records, flushes and commits. On
// any produce failure, or when ctx ends before the commit starts, it
// aborts the transaction and returns the cause. A commit, once started,
// runs to completion even if ctx ends (bounded by the end timeout).
func (k *KafkaCommitter) Commit(ctx context.Context, records []*kgo.Record) error {
	if err := k.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	var (
		mu       sync.Mutex
		firstErr error
	)
	for _, r := range records {
		k.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	flushErr := k.cl.Flush(ctx)
	mu.Lock()
	produceErr := firstErr
	mu.Unlock()
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.endTimeout)
	defer cancel()
	if flushErr == nil && produceErr == nil && ctx.Err() == nil {
		if err := k.cl.EndTransaction(endCtx, kgo.TryCommit); err != nil {
			return fmt.Errorf("committing transaction: %w", err)
		}
		return nil
	}
	cause := errors.Join(flushErr, produceErr, ctx.Err())
	abortErr := k.cl.AbortBufferedRecords(endCtx)
	if err := k.cl.EndTransaction(endCtx, kgo.TryAbort); err != nil {
		abortErr = errors.Join(abortErr, err)
	}
	if abortErr != nil {
		return fmt.Errorf("producing: %w (aborting: %w)", cause, abortErr)
	}
	return fmt.Errorf("producing (transaction aborted): %w", cause)
}
