package state

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Stream is the progress of one query stream of a source (the default
// stream, or the tenant_only=true one).
type Stream struct {
	// Cursor is a Unix second: every event with an earlier effective_at
	// that was visible when the cursor advanced has been published. The
	// next query starts at Cursor minus the overlap.
	Cursor int64 `json:"cursor"`
	// Initialized is false until the first backfill slice committed.
	Initialized bool `json:"initialized"`
	// LastRescan is the Unix second at which the last completed re-scan
	// started (0: never).
	LastRescan int64 `json:"last_rescan,omitempty"`
}

// State is what a source persists in one record, committed in the same
// transaction as the events it accounts for.
type State struct {
	SourceID string            `json:"source_id"`
	Streams  map[string]Stream `json:"streams"`
	// Floor is a Unix second: every event with effective_at <= Floor
	// counts as published even when Seen no longer holds it. It rises only
	// when the dedup memory overflows its capacity (0: never).
	Floor int64 `json:"floor,omitempty"`
	// CommittedAt is when the record was written.
	CommittedAt time.Time `json:"committed_at"`
	// Seen is the dedup memory.
	Seen Dedup `json:"-"`
}

// New returns the empty state of a source that never committed.
func New(sourceID string) State {
	return State{SourceID: sourceID, Streams: map[string]Stream{}, Seen: Dedup{m: map[uint64]int64{}}}
}

// Clone returns a deep copy of s: changing the copy's streams or dedup
// memory leaves s as it is.
func (s State) Clone() State {
	s.Streams = maps.Clone(s.Streams)
	if s.Streams == nil {
		s.Streams = map[string]Stream{}
	}
	s.Seen = Dedup{m: maps.Clone(s.Seen.m)}
	return s
}

// Published reports whether the event id with effective_at eff, met by a
// stream whose cursor is cursor, was already published: remembered in Seen,
// or at or below both the floor and that stream's cursor. The floor is
// shared by the source's streams, but only a range the stream itself has
// walked can hold its forgotten events: another stream (the tenant one
// during its first backfill, say) may raise the floor above events this
// stream has not published yet. Pass math.MinInt64 for a stream that never
// committed. A floor of 0 is no floor: an event at effective_at 0 or below
// counts as published only while Seen holds it.
func (s *State) Published(id string, eff, cursor int64) bool {
	return (s.Floor != 0 && eff <= s.Floor && eff <= cursor) || s.Seen.Contains(id)
}

// Trim keeps at most capacity ids in Seen by forgetting the oldest whole
// seconds and raising Floor over them. It returns how many ids it forgot.
func (s *State) Trim(capacity int) int {
	n := s.Seen.Len()
	if n <= capacity {
		return 0
	}
	es := s.Seen.entries()
	cut := n - capacity // forget at least es[:cut]
	floor := es[cut-1].eff
	for cut < n && es[cut].eff == floor {
		cut++
	}
	for _, e := range es[:cut] {
		delete(s.Seen.m, e.hash)
	}
	s.Floor = max(s.Floor, floor)
	return cut
}

// Dedup remembers published event ids as 64-bit hashes with their
// effective_at. The zero value is empty and ready. It is not safe for
// concurrent use.
type Dedup struct {
	m map[uint64]int64
}

// Hash returns the 64-bit fingerprint Dedup stores for id: the first eight
// bytes of its SHA-256. With 100,000 remembered ids the chance that a new
// id collides with one of them is about 5e-15.
func Hash(id string) uint64 {
	sum := sha256.Sum256([]byte(id))
	return binary.BigEndian.Uint64(sum[:8])
}

// Contains reports whether id was added and not forgotten since.
func (d *Dedup) Contains(id string) bool {
	_, ok := d.m[Hash(id)]
	return ok
}

// Add remembers id with its effective_at.
func (d *Dedup) Add(id string, eff int64) {
	if d.m == nil {
		d.m = map[uint64]int64{}
	}
	d.m[Hash(id)] = eff
}

// Len is the number of remembered ids.
func (d *Dedup) Len() int { return len(d.m) }

// Expire forgets the ids whose effective_at is before horizon and returns
// how many it forgot.
func (d *Dedup) Expire(horizon int64) int {
	n := 0
	for h, eff := range d.m {
		if eff < horizon {
			delete(d.m, h)
			n++
		}
	}
	return n
}

// Oldest returns the smallest remembered effective_at, or false if empty.
func (d *Dedup) Oldest() (int64, bool) {
	if len(d.m) == 0 {
		return 0, false
	}
	return slices.Min(slices.Collect(maps.Values(d.m))), true
}

type entry struct {
	eff  int64
	hash uint64
}

// entries returns the remembered ids sorted by effective_at, then hash.
func (d *Dedup) entries() []entry {
	es := make([]entry, 0, len(d.m))
	for h, eff := range d.m {
		es = append(es, entry{eff: eff, hash: h})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.eff, b.eff); c != 0 {
			return c
		}
		return cmp.Compare(a.hash, b.hash)
	})
	return es
}

// formatVersion is the first byte of every encoded state.
const formatVersion = 1

// maxEntries bounds what Decode accepts (far above any capacity allowed).
const maxEntries = 10_000_000

// ErrTooLarge is returned by Encode when the state does not fit the limit.
var ErrTooLarge = errors.New("encoded state exceeds the size limit")

// Codec encodes and decodes states. It is safe for concurrent use; Close
// releases it.
type Codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// NewCodec returns a Codec.
func NewCodec() (*Codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return nil, fmt.Errorf("creating zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("creating zstd decoder: %w", err)
	}
	return &Codec{enc: enc, dec: dec}, nil
}

// Close releases the codec's resources.
func (c *Codec) Close() {
	_ = c.enc.Close()
	c.dec.Close()
}

// Encode renders s: a version byte, then a zstd frame of a JSON header, the
// remembered ids' effective_at as sorted deltas (varints) and their 8-byte
// hashes. The hashes dominate: about 8.1 bytes per id. It returns
// ErrTooLarge when the result is longer than limit (limit <= 0: no limit).
func (c *Codec) Encode(s State, limit int) ([]byte, error) {
	hdr, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding state header: %w", err)
	}
	es := s.Seen.entries()
	raw := make([]byte, 0, len(hdr)+len(es)*10+20)
	raw = binary.AppendUvarint(raw, uint64(len(hdr)))
	raw = append(raw, hdr...)
	raw = binary.AppendUvarint(raw, uint64(len(es)))
	prev := int64(0)
	for _, e := range es {
		raw = binary.AppendVarint(raw, e.eff-prev)
		prev = e.eff
	}
	for _, e := range es {
		raw = binary.BigEndian.AppendUint64(raw, e.hash)
	}
	out := c.enc.EncodeAll(raw, []byte{formatVersion})
	if limit > 0 && len(out) > limit {
		return nil, fmt.Errorf("%w: %d bytes for %d ids, limit %d", ErrTooLarge, len(out), len(es), limit)
	}
	return out, nil
}

// Decode parses what Encode produced.
func (c *Codec) Decode(b []byte) (State, error) {
	if len(b) == 0 || b[0] != formatVersion {
		return State{}, errors.New("decoding state: unknown format version")
	}
	raw, err := c.dec.DecodeAll(b[1:], nil)
	if err != nil {
		return State{}, fmt.Errorf("decoding state: decompressing: %w", err)
	}
	r := bytes.NewReader(raw)
	hl, err := binary.ReadUvarint(r)
	if err != nil || hl > uint64(r.Len()) {
		return State{}, errors.New("decoding state: bad header length")
	}
	hdr := make([]byte, hl)
	_, _ = r.Read(hdr)
	var s State
	if err := json.Unmarshal(hdr, &s); err != nil {
		return State{}, fmt.Errorf("decoding state: header: %w", err)
	}
	if s.Streams == nil {
		s.Streams = map[string]Stream{}
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxEntries || n*8 > uint64(r.Len()) {
		return State{}, errors.New("decoding state: bad id count")
	}
	effs := make([]int64, n)
	prev := int64(0)
	for i := range effs {
		d, err := binary.ReadVarint(r)
		if err != nil {
			return State{}, fmt.Errorf("decoding state: effective_at %d: %w", i, err)
		}
		prev += d
		effs[i] = prev
	}
	if uint64(r.Len()) != n*8 {
		return State{}, fmt.Errorf("decoding state: %d trailing bytes for %d hashes", r.Len(), n)
	}
	s.Seen = Dedup{m: make(map[uint64]int64, n)}
	var h [8]byte
	for i := range effs {
		_, _ = r.Read(h[:])
		s.Seen.m[binary.BigEndian.Uint64(h[:])] = effs[i]
	}
	return s, nil
}
