package app

import (
	"fmt"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// The poller's memory model: with a budget (memory.limit) of B, Go's soft
// limit is B less max(B/6, 32 MiB) (service.MemoryConfig.SoftLimit), and
// within it a replica holds at most
//
//	reserve                            the runtime, admin server, group member, HTTP client
//	+ sources x (sourceBytes           a source's transactional Kafka client and its metrics
//	             + dedup_capacity x idBytes)   its dedup memory (an id's hash and time in a
//	                                   map, and the sorted copy the state encoding makes)
//	+ slices x sliceBytes              the slices collected at once: max_slice_events
//	                                   events, each held as page JSON, decoded and as a
//	                                   Kafka record until the commit
//
// Validate counts every configured source: when replicas die, one replica
// may own them all. Sources and dedup capacity are the operator's choice
// (memory traded for how late an arrival is still caught): a configuration
// whose sources do not fit is refused with what to change, never trimmed
// silently. The slices collected at once are derived from what is left
// (at least one), and collectors wait for a free slot.
const (
	reserve     = 24 * config.MiB
	sourceBytes = 320 * config.KiB // measured: 1,000 sources on one poller, e2e BenchmarkPollerSources
	idBytes     = 32
	// sliceEventBytes is one event of a slice in flight: the page's
	// bytes, the decoded item and the produced record.
	sliceEventBytes = 2 * config.KiB
	// maxSlices bounds the derived slots when nothing else does.
	maxSlices = 64
)

// perSource is the memory one source may take at rest.
func (c Config) perSource() config.ByteSize {
	return sourceBytes + config.ByteSize(c.Collection.DedupCapacity)*idBytes
}

// sliceBytes is the memory one slice in flight may take.
func (c Config) sliceBytes() config.ByteSize {
	return config.ByteSize(c.Collection.MaxSliceEvents) * sliceEventBytes
}

// Slices returns how many slices the replica collects at once: what the
// budget leaves after the sources, divided by a slice's size, within
// 1..64 and at most one per source. Without a budget, one per source (at
// most 64).
func (c Config) Slices() int {
	n := min(max(len(c.Sources), 1), maxSlices)
	if c.Memory.Limit == 0 {
		return n
	}
	free := config.ByteSize(c.Memory.SoftLimit()) - reserve - config.ByteSize(len(c.Sources))*c.perSource()
	return min(max(int(free/c.sliceBytes()), 1), n)
}

// budgetProblem reports sources that cannot fit memory.limit, with what
// to change.
func (c Config) budgetProblem() error {
	budget := c.Memory.Limit
	if budget == 0 {
		return nil
	}
	soft := config.ByteSize(c.Memory.SoftLimit())
	sources := config.ByteSize(len(c.Sources)) * c.perSource()
	need := reserve + sources + c.sliceBytes()
	if need <= soft {
		return nil
	}
	perSourceRoom := (soft - reserve - c.sliceBytes()) / config.ByteSize(max(len(c.Sources), 1))
	fix := "lower collection.max_slice_events"
	if capacity := int((perSourceRoom - sourceBytes) / idBytes); capacity >= minDedupCapacity {
		fix = fmt.Sprintf("lower collection.dedup_capacity to at most %d", capacity)
	}
	return fmt.Errorf("memory.limit: %d sources need %s (%s each: %s for the source's Kafka client + collection.dedup_capacity %d x %d B) + %s of runtime + %s for one slice in flight (collection.max_slice_events %d x %s), above the %s Go's soft limit allows; %s, split the sources over poller deployments, or raise memory.limit to at least %s",
		len(c.Sources), sources.RoundUp(config.MiB), c.perSource().RoundUp(config.KiB), config.ByteSize(sourceBytes), c.Collection.DedupCapacity, idBytes,
		reserve, c.sliceBytes().RoundUp(config.MiB), c.Collection.MaxSliceEvents, config.ByteSize(sliceEventBytes), soft.RoundUp(config.MiB), fix,
		(need + c.Memory.Headroom() + 1).RoundUp(config.MiB))
}

// sizedKafka returns the Kafka configuration with its unset fetch bounds
// sized for a budget: each source's client fetches only its state
// partition when it starts (one record of at most 1 MiB is returned even
// above the fetch bound). The producer buffer keeps its default: the
// records it holds are the slice's events, whose bytes the slice already
// accounts (a 4 MiB buffer made backfills 20% slower, for no memory).
func (c Config) sizedKafka() kafka.Config {
	if c.Memory.Limit == 0 {
		return c.Kafka
	}
	return c.Kafka.Sized(2<<20, 0)
}
