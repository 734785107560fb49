package batch_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func rec(p int32, off int64, size int) *kgo.Record {
	return &kgo.Record{Topic: "t", Partition: p, Offset: off, Value: make([]byte, size)}
}

// add adds r accounted at its size as consumed.
func add(b *batch.Buffer[int], r *kgo.Record, v int) { b.Add(r, v, batch.RecordSize(r)) }

func newBuf(p batch.Policy) (*batch.Buffer[int], *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	return batch.NewBuffer[int](p, c.now), c
}

func TestReadyOnRowsBytesOrAge(t *testing.T) {
	policy := batch.Policy{MaxRows: 3, MaxBytes: 100, MaxAge: time.Second, BoundaryWait: time.Minute}
	tests := []struct {
		name  string
		fill  func(b *batch.Buffer[int], c *clock)
		ready bool
		full  bool
	}{
		{"empty", func(*batch.Buffer[int], *clock) {}, false, false},
		{"young", func(b *batch.Buffer[int], c *clock) { add(b, rec(0, 0, 1), 0); c.advance(999 * time.Millisecond) }, false, false},
		{"old", func(b *batch.Buffer[int], c *clock) { add(b, rec(0, 0, 1), 0); c.advance(time.Second) }, true, false},
		{"rows", func(b *batch.Buffer[int], _ *clock) {
			for i := range 3 {
				add(b, rec(int32(i), 0, 1), i)
			}
		}, true, true},
		{"bytes", func(b *batch.Buffer[int], _ *clock) { add(b, rec(0, 0, 100), 0) }, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := newBuf(policy)
			tt.fill(b, c)
			assert.Equal(t, tt.ready, b.Ready())
			assert.Equal(t, tt.full, b.Full())
		})
	}
}

func TestDeadlineIsOldestRecordPlusMaxAge(t *testing.T) {
	b, c := newBuf(batch.Policy{MaxRows: 10, MaxBytes: 1 << 20, MaxAge: time.Second, BoundaryWait: time.Minute})
	_, ok := b.Deadline()
	assert.False(t, ok)
	start := c.t
	add(b, rec(0, 0, 1), 0)
	c.advance(300 * time.Millisecond)
	add(b, rec(1, 0, 1), 0)
	d, ok := b.Deadline()
	require.True(t, ok)
	assert.Equal(t, start.Add(time.Second), d)
}

func TestPartsAndRemove(t *testing.T) {
	b, _ := newBuf(batch.DefaultPolicy())
	for off := int64(10); off < 15; off++ {
		add(b, rec(1, off, 10), int(off))
	}
	add(b, rec(0, 7, 10), 7)
	parts := b.Parts(false, nil)
	require.Len(t, parts, 2)
	assert.Equal(t, int32(0), parts[0].Partition)
	assert.Equal(t, int64(10), parts[1].First())
	assert.Equal(t, int64(14), parts[1].Last())
	assert.Equal(t, int64(15), parts[1].Next())
	b.Remove(parts[1])
	assert.Equal(t, 1, b.Rows())
	assert.Equal(t, 10, b.Bytes())
	only := b.Parts(false, map[batch.TopicPartition]bool{{Topic: "t", Partition: 1}: true})
	assert.Empty(t, only)
	b.Drop(batch.TopicPartition{Topic: "t", Partition: 0})
	assert.Zero(t, b.Rows())
	assert.Zero(t, b.Bytes())
}

func TestBoundaryHoldsUntilReached(t *testing.T) {
	b, c := newBuf(batch.Policy{MaxRows: 100, MaxBytes: 1 << 20, MaxAge: time.Millisecond, BoundaryWait: time.Minute})
	tp := batch.TopicPartition{Topic: "t", Partition: 0}
	b.SetBoundary(tp, 12)
	add(b, rec(0, 10, 1), 0)
	add(b, rec(0, 11, 1), 0)
	c.advance(time.Second)
	assert.Empty(t, b.Parts(false, nil), "held until offset 12")
	assert.True(t, b.Held()[tp])
	add(b, rec(0, 13, 1), 0) // 12 was a transaction marker: passing it counts
	add(b, rec(0, 14, 1), 0)
	parts := b.Parts(false, nil)
	require.Len(t, parts, 1)
	assert.True(t, parts[0].Bounded)
	assert.Equal(t, int64(11), parts[0].Last(), "the part stops at the boundary")
	b.Remove(parts[0])
	_, ok := b.Boundary(tp)
	assert.False(t, ok)
	parts = b.Parts(false, nil)
	require.Len(t, parts, 1)
	assert.Equal(t, int64(13), parts[0].First())
	assert.False(t, parts[0].Bounded)
}

func TestBoundaryLapses(t *testing.T) {
	b, c := newBuf(batch.Policy{MaxRows: 100, MaxBytes: 1 << 20, MaxAge: time.Millisecond, BoundaryWait: time.Second})
	tp := batch.TopicPartition{Topic: "t", Partition: 0}
	b.SetBoundary(tp, 50)
	add(b, rec(0, 10, 1), 0)
	d, ok := b.Deadline()
	require.True(t, ok)
	assert.Equal(t, c.t.Add(time.Second), d, "the deadline is the lapse")
	c.advance(time.Second)
	assert.Empty(t, b.Held())
	parts := b.Parts(false, nil)
	require.Len(t, parts, 1)
	assert.False(t, parts[0].Bounded)
}

func TestPolicyValidate(t *testing.T) {
	require.NoError(t, batch.DefaultPolicy().Validate())
	err := batch.Policy{}.Validate()
	for _, k := range []string{"max_rows", "max_bytes", "max_age", "boundary_wait"} {
		assert.ErrorContains(t, err, k)
	}
}

func TestBytesAreTheSizesGiven(t *testing.T) {
	b, _ := newBuf(batch.Policy{MaxRows: 100, MaxBytes: 1000, MaxAge: time.Second, BoundaryWait: time.Minute})
	b.Add(rec(0, 0, 1), 0, 300) // a 1-byte record whose decoded row takes 300
	b.Add(rec(0, 1, 1), 1, 500)
	b.Add(rec(1, 0, 1), 2, 100)
	assert.Equal(t, 900, b.Bytes())
	assert.Equal(t, 100, b.ByteRoom())
	assert.False(t, b.Full())
	b.Add(rec(1, 1, 1), 3, 100)
	assert.True(t, b.Full(), "full by the accounted bytes, not the record bytes")
	assert.Zero(t, b.ByteRoom())
	parts := b.Parts(false, nil)
	require.Len(t, parts, 2)
	assert.Equal(t, 300, parts[0].Items[0].Size)
	b.Remove(parts[0])
	assert.Equal(t, 200, b.Bytes())
	b.Drop(batch.TopicPartition{Topic: "t", Partition: 1})
	assert.Zero(t, b.Bytes())
}
