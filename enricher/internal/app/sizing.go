package app

import (
	"fmt"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// The enricher's memory model: with a budget (memory.limit) of B, Go's
// soft limit is B less max(B/6, 32 MiB) (service.MemoryConfig.SoftLimit:
// the rest is for the code and the memory-mapped GeoIP databases), and
// within it the enricher holds at most
//
//	reserve                          the clients, registry, metrics at rest
//	+ geo.cache_size x geoEntryBytes the lookup cache
//	+ fetchCopies x fetch            kafka.fetch_max_bytes, held decompressed
//	                                 and decoded into records (raw JSON
//	                                 compresses about 10x with zstd)
//	+ producer buffer                kafka.max_buffered_bytes
//	+ 2 x max_poll_records x recordBytes  one transaction's records: the raw
//	                                 record, its normalized row and its
//	                                 encoding, with the GC's headroom
//
// The sum is kept within heapShare of the soft limit (measured with the
// heap profile under load), so the collector has room to work. The keys
// left at 0 are derived so that the sum fits; keys set explicitly are
// kept, and Validate refuses combinations that cannot fit.
const (
	reserve          = 16 * config.MiB
	geoEntryBytes    = 2048 // an address, its Info (strings and enrichment maps) and the LRU's element and map slot
	fetchShare       = 64   // fetch_max_bytes = B / fetchShare, within 1..50 MiB
	fetchCopies      = 12   // a zstd response decompressed and decoded into records
	produceShare     = 16   // max_buffered_bytes = B / produceShare
	heapShare        = 75   // percent of Go's soft limit the model fills
	recordBytes      = 8 * config.KiB
	maxPollDefault   = 5000 // the most records per transaction derived from a budget
	minPollRecords   = 100
	maxPollRecordsUp = 100_000
)

// Sizing is what the enricher runs with once the budget is applied.
type Sizing struct {
	MaxPollRecords int
	Kafka          kafka.Config
}

// Sizing applies memory.limit to the keys left at 0. Without a budget
// they take the defaults (5000 records per transaction, kafka's default
// buffer bounds).
func (c Config) Sizing() Sizing {
	s := Sizing{MaxPollRecords: c.MaxPollRecords, Kafka: c.Kafka}
	budget := c.Memory.Limit
	if budget == 0 {
		if s.MaxPollRecords == 0 {
			s.MaxPollRecords = maxPollDefault
		}
		return s
	}
	fetch := min(max(budget/fetchShare, config.MiB), kafka.DefaultFetchMaxBytes)
	s.Kafka = c.Kafka.Sized(fetch.Bytes(), (budget / produceShare).Bytes())
	if s.MaxPollRecords == 0 {
		free := c.free(s)
		s.MaxPollRecords = int(min(max(free/(2*recordBytes), minPollRecords), maxPollDefault))
	}
	return s
}

// free is what the budget leaves for the transaction's records.
func (c Config) free(s Sizing) config.ByteSize {
	return config.ByteSize(c.Memory.SoftLimit())*heapShare/100 - reserve - config.ByteSize(c.Geo.CacheSize)*geoEntryBytes -
		fetchCopies*s.Kafka.FetchMaxBytes - config.ByteSize(s.Kafka.MaxBufferedBytes)
}

// budgetProblem reports a sizing that cannot fit memory.limit, with what
// to change.
func (c Config) budgetProblem() error {
	budget := c.Memory.Limit
	if budget == 0 {
		return nil
	}
	// A derived max_poll_records fits unless even minPollRecords does not.
	s := c.Sizing()
	free := c.free(s)
	need := 2 * recordBytes * config.ByteSize(s.MaxPollRecords)
	if need <= free {
		return nil
	}
	over := need - free
	return fmt.Errorf("memory.limit: %s does not fit the enricher: %s of runtime + %s of GeoIP cache (geo.cache_size %d x ~%d B) + %s of Kafka fetches (%d x kafka.fetch_max_bytes) + %s of producer buffer (kafka.max_buffered_bytes) + %s for a transaction (2 x %d max_poll_records x %s) exceed the %s the enricher allows itself (%d%% of Go's soft limit) by %s; lower max_poll_records, geo.cache_size or the Kafka buffers, or raise memory.limit to at least %s",
		budget, reserve, config.ByteSize(c.Geo.CacheSize)*geoEntryBytes, c.Geo.CacheSize, geoEntryBytes, fetchCopies*s.Kafka.FetchMaxBytes, fetchCopies,
		config.ByteSize(s.Kafka.MaxBufferedBytes), need, s.MaxPollRecords, recordBytes,
		(config.ByteSize(c.Memory.SoftLimit()) * heapShare / 100).RoundUp(config.MiB), heapShare, over.RoundUp(config.MiB), (budget + over*100/heapShare*6/5 + 1).RoundUp(config.MiB))
}
