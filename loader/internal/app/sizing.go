package app

import (
	"cmp"
	"fmt"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// The loader's memory model: with a budget (memory.limit) of B, Go's soft
// limit is B less max(B/6, 32 MiB) (service.MemoryConfig.SoftLimit: the
// rest is for the code and what the runtime does not manage). The loader
// keeps its live heap within heapShare of that, leaving the collector
// room to work (a live heap at the soft limit makes it run without pause),
// and holds at most
//
//	reserve                       the clients, pools and metrics at rest
//	+ fetchCopies x fetch         kafka.fetch_max_bytes, held decompressed
//	                              (the enricher's zstd batches grow ~5x)
//	+ batchCopies x batch         batch.max_bytes: the batch being inserted,
//	                              the next one decoded meanwhile, the
//	                              insert's buffers: clickhouse-go's column
//	                              block, the encoded and the compressed
//	                              request, which each pooled connection
//	                              keeps for reuse (about twice the batch,
//	                              measured with the heap profile)
//
// where a batch's bytes are each record as consumed plus its decoded row
// (the pipeline estimates a row from its strings, maps and slices). The
// keys left at 0 are derived so that the sum fits; keys set explicitly are
// kept, and Validate refuses combinations that cannot fit.
const (
	reserve     = 12 * config.MiB
	fetchShare  = 64 // fetch_max_bytes = B / fetchShare, within 1..50 MiB
	fetchCopies = 6  // a zstd response decompressed, plus the response itself
	batchCopies = 4
	// heapShare is the share of Go's soft limit the model fills, in
	// percent.
	heapShare = 60
	// minBatchBytes is the smallest derived batch: below it the budget
	// is too small for the loader.
	minBatchBytes = 256 * config.KiB
	// rowBytesFloor derives batch.max_rows from batch.max_bytes: no row
	// takes less than this (record plus decoded row), so the row bound
	// never binds before the byte bound for real records.
	rowBytesFloor = 1 * config.KiB
	maxBatchRows  = 100_000
	minBatchRows  = 1000
)

// Sizing is what the loader runs with once the budget is applied.
type Sizing struct {
	Batch             batch.Policy
	InsertConcurrency int
	Kafka             kafka.Config
}

// Sizing returns what the loader runs with: memory.limit applied to the
// keys left at 0 (see sizing).
func (c Config) Sizing() Sizing { return c.sizing() }

// sizing applies memory.limit to the keys left at 0. Without a budget
// they take the defaults (batch.DefaultPolicy, 4 concurrent inserts,
// kafka's default buffer bounds).
func (c Config) sizing() Sizing {
	s := Sizing{Batch: c.Batch.Policy, InsertConcurrency: c.Consumer.InsertConcurrency, Kafka: c.Kafka}
	budget := c.Memory.Limit
	def := batch.DefaultPolicy()
	if budget == 0 {
		s.Batch.MaxBytes = cmp.Or(s.Batch.MaxBytes, def.MaxBytes)
		s.Batch.MaxRows = cmp.Or(s.Batch.MaxRows, def.MaxRows)
		s.InsertConcurrency = cmp.Or(s.InsertConcurrency, 4)
		return s
	}
	fetch := min(max(budget/fetchShare, config.MiB), kafka.DefaultFetchMaxBytes)
	s.Kafka = c.Kafka.Sized(fetch.Bytes(), max(budget/64, 2*config.MiB).Bytes())
	if s.Batch.MaxBytes == 0 {
		free := heapBudget(c) - reserve - fetchCopies*s.Kafka.FetchMaxBytes
		s.Batch.MaxBytes = int(max(free/batchCopies, 0))
	}
	if s.Batch.MaxRows == 0 {
		s.Batch.MaxRows = min(max(s.Batch.MaxBytes/int(rowBytesFloor), minBatchRows), maxBatchRows)
	}
	if s.InsertConcurrency == 0 {
		switch {
		case budget >= 128*config.MiB:
			s.InsertConcurrency = 4
		case budget >= 64*config.MiB:
			s.InsertConcurrency = 2
		default:
			s.InsertConcurrency = 1
		}
	}
	return s
}

// budgetProblem reports a sizing that cannot fit memory.limit, with what
// to change.
func (c Config) budgetProblem(s Sizing) error {
	budget := c.Memory.Limit
	if budget == 0 {
		return nil
	}
	soft := heapBudget(c)
	fetch := fetchCopies * s.Kafka.FetchMaxBytes
	batchBytes := config.ByteSize(s.Batch.MaxBytes)
	if c.Batch.MaxBytes == 0 && batchBytes < minBatchBytes {
		need := (reserve+fetch+batchCopies*minBatchBytes)*100/heapShare + c.Memory.Headroom()
		return fmt.Errorf("memory.limit: %s leaves less than %s for a batch after %s of runtime and %s of Kafka fetches (%d x kafka.fetch_max_bytes); raise memory.limit to at least %s",
			budget, minBatchBytes, reserve, fetch, fetchCopies, need.RoundUp(config.MiB))
	}
	used := reserve + fetch + batchCopies*batchBytes
	if used <= soft {
		return nil
	}
	room := (soft - reserve - fetch) / batchCopies
	fix := fmt.Sprintf("lower batch.max_bytes to at most %s", max(room, 0)/config.MiB*config.MiB)
	if room < minBatchBytes {
		fix = "lower kafka.fetch_max_bytes"
	}
	return fmt.Errorf("batch.max_bytes: %s does not fit memory.limit %s: the loader holds up to %d x batch.max_bytes (the batch being inserted, the next one decoded meanwhile, and the insert's buffers, about two batches) + %s of Kafka fetches (%d x kafka.fetch_max_bytes) + %s of runtime at rest = %s, above the %s the loader allows itself (%d%% of Go's soft limit); %s, or raise memory.limit to at least %s",
		batchBytes, budget, batchCopies, fetch, fetchCopies, reserve, used.RoundUp(config.MiB), soft.RoundUp(config.MiB), heapShare, fix, (used*100/heapShare + c.Memory.Headroom() + 1).RoundUp(config.MiB))
}

// heapBudget is the live heap the loader plans for: heapShare of Go's
// soft limit.
func heapBudget(c Config) config.ByteSize {
	return config.ByteSize(c.Memory.SoftLimit()) * heapShare / 100
}
