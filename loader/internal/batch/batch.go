package batch

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Policy bounds a Buffer. The buffer is ready to flush as soon as it holds
// MaxRows records or MaxBytes bytes of memory, or its oldest record has
// waited MaxAge, whichever comes first. The defaults follow ClickHouse's
// guidance for inserts: large blocks, about one insert per second.
type Policy struct {
	// MaxRows is the most records buffered before a flush.
	MaxRows int `koanf:"max_rows"`
	// MaxBytes is the most memory the buffered records may take before a
	// flush: the size each was added with (the loader counts a record's
	// bytes as consumed plus its decoded row).
	MaxBytes int `koanf:"max_bytes"`
	// MaxAge is the longest a record waits in the buffer.
	MaxAge time.Duration `koanf:"max_age"`
	// BoundaryWait is the longest a partition waits to reach the range an
	// earlier, interrupted flush announced (see SetBoundary) before it is
	// flushed without it.
	BoundaryWait time.Duration `koanf:"boundary_wait"`
}

// DefaultPolicy returns the policy of a loader without a memory budget:
// 100,000 rows, 1 GiB, 1 s, and a 30 s boundary wait.
func DefaultPolicy() Policy {
	return Policy{MaxRows: 100_000, MaxBytes: 1 << 30, MaxAge: time.Second, BoundaryWait: 30 * time.Second}
}

// Validate reports every non-positive bound.
func (p Policy) Validate() error {
	var errs []error
	if p.MaxRows <= 0 {
		errs = append(errs, errors.New("max_rows: must be positive"))
	}
	if p.MaxBytes <= 0 {
		errs = append(errs, errors.New("max_bytes: must be positive"))
	}
	if p.MaxAge <= 0 {
		errs = append(errs, errors.New("max_age: must be positive"))
	}
	if p.BoundaryWait <= 0 {
		errs = append(errs, errors.New("boundary_wait: must be positive"))
	}
	return errors.Join(errs...)
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// Item is one buffered record, what the caller made of it, and the memory
// it was accounted with.
type Item[T any] struct {
	Record *kgo.Record
	Value  T
	Size   int
}

// Part is the contiguous run of one partition's buffered items that is to be
// flushed together. Its items are in offset order. A Part is a view into the
// Buffer: it stays valid until Remove or Drop.
type Part[T any] struct {
	TopicPartition
	Items []Item[T]
	// Bounded reports that the part ends exactly at a boundary set by
	// SetBoundary.
	Bounded bool
}

// First returns the offset of the part's first record.
func (p *Part[T]) First() int64 { return p.Items[0].Record.Offset }

// Last returns the offset of the part's last record.
func (p *Part[T]) Last() int64 { return p.Items[len(p.Items)-1].Record.Offset }

// Next returns the offset to commit once the part is flushed.
func (p *Part[T]) Next() int64 { return p.Last() + 1 }

type partition[T any] struct {
	items    []Item[T]
	bytes    int
	added    []time.Time // per item, parallel to items
	boundary int64       // last offset of the first part; -1: none
	since    time.Time   // when the boundary was set
}

// Buffer holds the records consumed from the partitions a consumer owns,
// in offset order per partition, until they are flushed. It is not safe
// for concurrent use.
type Buffer[T any] struct {
	policy Policy
	now    func() time.Time
	parts  map[TopicPartition]*partition[T]
	rows   int
	bytes  int
}

// NewBuffer returns an empty buffer with policy p (which must be valid);
// now is its clock (time.Now when nil).
func NewBuffer[T any](p Policy, now func() time.Time) *Buffer[T] {
	if now == nil {
		now = time.Now
	}
	return &Buffer[T]{policy: p, now: now, parts: make(map[TopicPartition]*partition[T])}
}

// RecordSize is the size of a record as consumed: its key, value and
// header keys and values.
func RecordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

func (b *Buffer[T]) partition(tp TopicPartition) *partition[T] {
	p := b.parts[tp]
	if p == nil {
		p = &partition[T]{boundary: -1}
		b.parts[tp] = p
	}
	return p
}

// Add appends r with its value, accounted as size bytes of memory.
// Records of one partition must be added in offset order.
func (b *Buffer[T]) Add(r *kgo.Record, v T, size int) {
	p := b.partition(TopicPartition{r.Topic, r.Partition})
	p.items = append(p.items, Item[T]{Record: r, Value: v, Size: size})
	p.added = append(p.added, b.now())
	p.bytes += size
	b.rows++
	b.bytes += size
}

// SetBoundary makes the next flushed part of tp end exactly at offset last:
// records up to last are held until the record at last (or a later one)
// has been added, and later records wait for the following part. It is
// how a consumer repeats the range of a flush that was interrupted, so the
// repeated insert is identical. The boundary lapses after
// Policy.BoundaryWait.
func (b *Buffer[T]) SetBoundary(tp TopicPartition, last int64) {
	p := b.partition(tp)
	p.boundary = last
	p.since = b.now()
}

// Boundary returns tp's pending boundary, if any.
func (b *Buffer[T]) Boundary(tp TopicPartition) (int64, bool) {
	p := b.parts[tp]
	if p == nil || p.boundary < 0 {
		return 0, false
	}
	return p.boundary, true
}

// Rows returns the number of buffered records.
func (b *Buffer[T]) Rows() int { return b.rows }

// Bytes returns the memory the buffered records were accounted with.
func (b *Buffer[T]) Bytes() int { return b.bytes }

// Full reports whether the buffer reached MaxRows or MaxBytes: the caller
// must flush before consuming more.
func (b *Buffer[T]) Full() bool {
	return b.rows >= b.policy.MaxRows || b.bytes >= b.policy.MaxBytes
}

// Room returns how many more records fit under MaxRows (at least 1).
func (b *Buffer[T]) Room() int {
	return max(1, b.policy.MaxRows-b.rows)
}

// ByteRoom returns how many more bytes fit under MaxBytes (0 when full).
func (b *Buffer[T]) ByteRoom() int {
	return max(0, b.policy.MaxBytes-b.bytes)
}

// cut returns how many leading items of p form its next part, and whether
// that part ends at the boundary. ok is false while p waits for its
// boundary.
func (b *Buffer[T]) cut(p *partition[T], now time.Time) (n int, bounded, ok bool) {
	if len(p.items) == 0 {
		return 0, false, false
	}
	if p.boundary < 0 {
		return len(p.items), false, true
	}
	n, _ = slices.BinarySearchFunc(p.items, p.boundary+1, func(it Item[T], off int64) int {
		switch {
		case it.Record.Offset < off:
			return -1
		case it.Record.Offset > off:
			return 1
		}
		return 0
	})
	reached := n < len(p.items) || p.items[n-1].Record.Offset == p.boundary
	switch {
	case n == 0:
		// Every item is past the boundary: nothing to repeat.
		p.boundary = -1
		return len(p.items), false, true
	case reached:
		return n, true, true
	case now.Sub(p.since) >= b.policy.BoundaryWait:
		p.boundary = -1
		return len(p.items), false, true
	}
	return 0, false, false
}

// Deadline returns when the oldest flushable record reaches MaxAge (or a
// waiting boundary lapses); ok is false when there is nothing to wait for.
func (b *Buffer[T]) Deadline() (t time.Time, ok bool) {
	now := b.now()
	for _, p := range b.parts {
		if len(p.items) == 0 {
			continue
		}
		var d time.Time
		if _, _, can := b.cut(p, now); can {
			d = p.added[0].Add(b.policy.MaxAge)
		} else {
			d = p.since.Add(b.policy.BoundaryWait)
		}
		if !ok || d.Before(t) {
			t, ok = d, true
		}
	}
	return t, ok
}

// Ready reports whether the buffer should be flushed now: it is Full or a
// record's age reached MaxAge.
func (b *Buffer[T]) Ready() bool {
	if b.Full() {
		return true
	}
	d, ok := b.Deadline()
	return ok && !b.now().Before(d)
}

// Parts returns the parts to flush now, one per partition with flushable
// records, ordered by topic and partition. With only non-nil, just those
// partitions are considered. Partitions waiting for their boundary are
// left out unless force is set (then they are flushed as they are and the
// boundary is forgotten).
func (b *Buffer[T]) Parts(force bool, only map[TopicPartition]bool) []*Part[T] {
	now := b.now()
	var out []*Part[T]
	for tp, p := range b.parts {
		if only != nil && !only[tp] {
			continue
		}
		n, bounded, ok := b.cut(p, now)
		if !ok && force && len(p.items) > 0 {
			p.boundary = -1
			n, bounded, ok = len(p.items), false, true
		}
		if !ok {
			continue
		}
		out = append(out, &Part[T]{TopicPartition: tp, Items: p.items[:n:n], Bounded: bounded})
	}
	slices.SortFunc(out, func(x, y *Part[T]) int {
		if x.Topic != y.Topic {
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		}
		return int(x.Partition) - int(y.Partition)
	})
	return out
}

// Remove drops a flushed part (returned by Parts and not yet removed) from
// the buffer.
func (b *Buffer[T]) Remove(part *Part[T]) {
	p := b.parts[part.TopicPartition]
	if p == nil || len(p.items) < len(part.Items) || len(part.Items) == 0 ||
		p.items[0].Record != part.Items[0].Record {
		return
	}
	n := len(part.Items)
	size := 0
	for _, it := range p.items[:n] {
		size += it.Size
	}
	clear(p.items[:n])
	p.items = p.items[n:]
	p.added = p.added[n:]
	p.bytes -= size
	b.rows -= n
	b.bytes -= size
	if part.Bounded {
		p.boundary = -1
	}
	if len(p.items) == 0 {
		p.items, p.added = nil, nil
	}
}

// Drop forgets everything buffered for the partitions, boundaries
// included (they were revoked or lost).
func (b *Buffer[T]) Drop(tps ...TopicPartition) {
	for _, tp := range tps {
		p := b.parts[tp]
		if p == nil {
			continue
		}
		b.rows -= len(p.items)
		b.bytes -= p.bytes
		delete(b.parts, tp)
	}
}

// Partitions returns the partitions holding records or a boundary.
func (b *Buffer[T]) Partitions() []TopicPartition {
	out := make([]TopicPartition, 0, len(b.parts))
	for tp, p := range b.parts {
		if len(p.items) > 0 || p.boundary >= 0 {
			out = append(out, tp)
		}
	}
	return out
}

// Held returns the partitions that wait for their boundary: records up to
// it are missing and the boundary has not lapsed. A consumer keeps
// fetching them even when the buffer is Full, or the boundary could never
// be reached; their backlog is bounded by the announced ranges.
func (b *Buffer[T]) Held() map[TopicPartition]bool {
	now := b.now()
	out := map[TopicPartition]bool{}
	for tp, p := range b.parts {
		if p.boundary < 0 || now.Sub(p.since) >= b.policy.BoundaryWait {
			continue
		}
		if len(p.items) == 0 || p.items[len(p.items)-1].Record.Offset < p.boundary {
			out[tp] = true
		}
	}
	return out
}
