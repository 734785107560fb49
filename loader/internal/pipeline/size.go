package pipeline

import (
	"math/bits"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Memory the Go heap spends on a buffered record, estimated from what it
// holds. The estimate follows the allocations the Avro decoder makes: one
// allocation per non-empty string (rounded up to the allocator's size
// classes), one per map (Go's swiss tables: groups of 8 slots of key and
// value plus 8 control bytes, filled to at most 7/8) and one per slice
// backing array. TestEntrySizeMatchesHeap checks it against
// runtime.MemStats.
const (
	entryFixed     = int(unsafe.Sizeof(entry{}))
	recordFixed    = int(unsafe.Sizeof(kgo.Record{}))
	headerFixed    = int(unsafe.Sizeof(kgo.RecordHeader{}))
	enrichFixed    = int(unsafe.Sizeof(schema.Enrichment{}))
	stringHeader   = int(unsafe.Sizeof(""))
	mapHeader      = 48 // the map's own header (internal/runtime/maps.Map)
	mapTable       = 64 // a table header, once the map outgrows one group
	mapSlotBytes   = 33 // key + value string headers, plus a control byte
	mapGroupSlots  = 8  // slots in one group
	pendingPerByte = 6  // a pending (undecoded) record is reserved as this many times its value
	avgEntryGuess  = 4096
)

// entrySize is the heap memory held for r and its entry e while buffered:
// the decoded row (or, for a pending record, a reservation for it) plus
// the record's own struct and headers. The record's key, value and header
// values are slices of the fetch's decompressed batch; they are counted
// by batch.RecordSize, so the total is RecordSize + entrySize.
func entrySize(r *kgo.Record, e *entry) int {
	n := entryFixed + recordFixed + len(r.Headers)*headerFixed
	for _, h := range r.Headers {
		n += stringBytes(h.Key)
	}
	switch e.state {
	case stateRow:
		n += rowBytes(&e.row)
	case statePending:
		n += pendingPerByte * len(r.Value)
	case stateDead:
		n += stringBytes(e.reason) + stringBytes(e.err)
	}
	return n
}

// itemSize is what the buffer accounts for one record: its bytes as
// consumed and the heap behind its entry.
func itemSize(r *kgo.Record, e *entry) int { return batch.RecordSize(r) + entrySize(r, e) }

// rowBytes is the heap memory the strings, maps and slices of l hold
// (the struct itself is part of its entry).
func rowBytes(l *schema.AuditLog) int {
	n := 0
	for _, s := range [...]string{
		l.WorkspaceID, l.SourceID, l.SourceType, l.ID, l.EventName, l.EventID, l.SrcIP, l.SrcASCountryCode,
		l.SrcASOrganization, l.SrcCity, l.SrcConnectionType, l.SrcISP, l.SrcUserType, l.DstIP, l.DstASCountryCode,
		l.DstASOrganization, l.DstCity, l.DstConnectionType, l.DstISP, l.DstUserType, l.ServiceName, l.RawLog,
		l.EventType, l.ActorType, l.ActorIP, l.ActorUserID, l.ActorUserEmail, l.APIKeyID, l.APIKeyType,
		l.ServiceAccountID, l.ProjectID, l.ProjectName,
	} {
		n += stringBytes(s)
	}
	n += mapBytes(l.Actor) + mapBytes(l.Tags)
	if cap(l.Resources) > 0 {
		n += sizeClass(cap(l.Resources) * stringHeader)
		for _, s := range l.Resources {
			n += stringBytes(s)
		}
	}
	if cap(l.Enrichments) > 0 {
		n += sizeClass(cap(l.Enrichments) * enrichFixed)
		for i := range l.Enrichments {
			e := &l.Enrichments[i]
			n += mapBytes(e.Data) + stringBytes(e.Name) + stringBytes(e.Provider) + stringBytes(e.Type) + stringBytes(e.Value)
		}
	}
	return n
}

// mapBytes estimates a map[string]string: its header, its slots and the
// strings it holds.
func mapBytes(m map[string]string) int {
	if m == nil {
		return 0
	}
	n := mapHeader
	if len(m) > mapGroupSlots {
		// Grown past one group: a table of a power-of-two number of
		// slots, at most 7/8 full.
		slots := 1 << bits.Len(uint((len(m)*8+6)/7-1))
		n += mapTable + sizeClass(slots*mapSlotBytes)
	} else if len(m) > 0 {
		n += sizeClass(mapGroupSlots * mapSlotBytes)
	}
	for k, v := range m {
		n += stringBytes(k) + stringBytes(v)
	}
	return n
}

// stringBytes is the heap memory behind a string's bytes. Strings under
// 16 bytes share 16-byte blocks (the tiny allocator).
func stringBytes(s string) int {
	if len(s) < 16 {
		return len(s)
	}
	return sizeClass(len(s))
}

// sizeClass rounds n up the way the Go allocator does: to 16 bytes up to
// 256, then to steps of an eighth of the power of two below (an
// approximation of the size classes within 1/8); large objects to pages.
func sizeClass(n int) int {
	switch {
	case n <= 0:
		return 0
	case n <= 256:
		return (n + 15) &^ 15
	case n <= 32<<10:
		step := 1 << (bits.Len(uint(n)) - 4)
		return (n + step - 1) &^ (step - 1)
	}
	return (n + 8191) &^ 8191
}
