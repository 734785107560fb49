package state

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec()
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestRoundTrip(t *testing.T) {
	c := newCodec(t)
	cases := []struct {
		name string
		ids  int
	}{{"empty", 0}, {"one", 1}, {"many", 5000}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New("org-a")
			s.Streams["default"] = Stream{Cursor: 1720000000, Initialized: true, LastRescan: 1719990000}
			s.Floor = 1710000000
			s.CommittedAt = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
			for i := range tc.ids {
				s.Seen.Add(fmt.Sprintf("audit_log-%d", i), 1720000000-int64(i%977))
			}
			b, err := c.Encode(s, 0)
			require.NoError(t, err)
			got, err := c.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, s.SourceID, got.SourceID)
			assert.Equal(t, s.Streams, got.Streams)
			assert.Equal(t, s.Floor, got.Floor)
			assert.True(t, s.CommittedAt.Equal(got.CommittedAt))
			assert.Equal(t, s.Seen.m, got.Seen.m)
		})
	}
}

// TestSizeBound checks the documented bound: 100,000 ids spread over a day
// fit in 900,000 bytes, below the broker's default message.max.bytes.
func TestSizeBound(t *testing.T) {
	c := newCodec(t)
	s := New("org-a")
	for i := range 100_000 {
		s.Seen.Add(fmt.Sprintf("audit_log-%024d", i), 1720000000+int64(i*86400/100_000))
	}
	b, err := c.Encode(s, 900_000)
	require.NoError(t, err)
	t.Logf("100k ids: %d bytes (%.2f per id)", len(b), float64(len(b))/100_000)
	_, err = c.Encode(s, 100_000)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestTrimAndPublished(t *testing.T) {
	s := New("a")
	for i := range 10 {
		s.Seen.Add(fmt.Sprintf("id-%d", i), int64(100+i/2)) // two ids per second
	}
	assert.Equal(t, 0, s.Trim(10))
	assert.Equal(t, 4, s.Trim(7), "forgets whole seconds: 100 and 101")
	assert.Equal(t, int64(101), s.Floor)
	assert.True(t, s.Published("id-0", 100, 200), "forgotten but under the floor")
	assert.True(t, s.Published("anything", 101, 200))
	assert.False(t, s.Published("new", 102, 200))
	assert.True(t, s.Published("id-9", 104, 200))
	// A stream that has not walked that far yet (the tenant stream during
	// its first backfill while the default one raised the floor) must not
	// take the floor for its own unpublished events.
	assert.False(t, s.Published("tenant-1", 100, 50), "below the floor, above this stream's cursor")
	assert.False(t, s.Published("tenant-2", 100, math.MinInt64), "a stream that never committed")
	assert.Equal(t, 2, s.Seen.Expire(103))
	oldest, ok := s.Seen.Oldest()
	require.True(t, ok)
	assert.Equal(t, int64(103), oldest)
}

func TestDecodeRejects(t *testing.T) {
	c := newCodec(t)
	for _, b := range [][]byte{nil, {2}, {1, 0, 1, 2}} {
		_, err := c.Decode(b)
		assert.Error(t, err)
	}
}

func FuzzDecode(f *testing.F) {
	c := newCodec(f)
	s := New("org")
	s.Streams["tenant"] = Stream{Cursor: 5}
	s.Seen.Add("x", 3)
	s.Seen.Add("y", 1)
	b, err := c.Encode(s, 0)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := c.Decode(b)
		if err != nil {
			return
		}
		again, err := c.Encode(got, 0)
		require.NoError(t, err)
		back, err := c.Decode(again)
		require.NoError(t, err)
		require.Equal(t, got.Seen.m, back.Seen.m)
	})
}

func TestCloneIsIndependent(t *testing.T) {
	s := New("src")
	s.Streams["default"] = Stream{Cursor: 10, Initialized: true}
	s.Seen.Add("a", 5)
	c := s.Clone()
	c.Streams["default"] = Stream{Cursor: 20}
	c.Streams["tenant"] = Stream{Cursor: 1}
	c.Seen.Add("b", 6)
	c.Trim(1)
	assert.Equal(t, map[string]Stream{"default": {Cursor: 10, Initialized: true}}, s.Streams)
	assert.True(t, s.Seen.Contains("a"))
	assert.False(t, s.Seen.Contains("b"))
	assert.Equal(t, 1, s.Seen.Len())
	assert.Zero(t, s.Floor)
}

func TestNoFloorPublishesNothingAtOrBelowZero(t *testing.T) {
	s := New("org-a") // never overflowed: Floor 0 is no floor
	for _, eff := range []int64{0, -1, math.MinInt64 + 1} {
		assert.False(t, s.Published(fmt.Sprintf("e%d", eff), eff, 1720000000), "effective_at %d is not published yet", eff)
	}
	s.Seen.Add("e0", 0)
	assert.True(t, s.Published("e0", 0, 1720000000), "until it is remembered")
}
