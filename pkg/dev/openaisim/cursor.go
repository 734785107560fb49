package openaisim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// position is a place in the listing order: items are sorted by
// EffectiveAt descending, then Seq descending.
type position struct {
	EffectiveAt int64
	Seq         uint64
}

func positionOf(e *Event) position { return position{EffectiveAt: e.EffectiveAt, Seq: e.Seq} }

// newerThan reports whether p is listed before q.
func (p position) newerThan(q position) bool {
	if p.EffectiveAt != q.EffectiveAt {
		return p.EffectiveAt > q.EffectiveAt
	}
	return p.Seq > q.Seq
}

// cursorPrefix starts every cursor; it makes cursors recognisable in logs
// without making them look like item ids.
const cursorPrefix = "cur_"

// encodeCursor returns the opaque cursor of p: a prefix and the unpadded
// base64url of "v1.<effective_at>.<seq>.<crc32>". Cursors stay valid across
// insertions because they name a position, not an index.
func encodeCursor(p position) string {
	body := "v1." + strconv.FormatInt(p.EffectiveAt, 10) + "." + strconv.FormatUint(p.Seq, 10)
	sum := crc32.ChecksumIEEE([]byte(body))
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(body+"."+strconv.FormatUint(uint64(sum), 16)))
}

var errInvalidCursor = errors.New("invalid cursor")

// decodeCursor parses a cursor made by encodeCursor.
func decodeCursor(s string) (position, error) {
	b64, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok {
		return position{}, errInvalidCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return position{}, fmt.Errorf("%w: %w", errInvalidCursor, err)
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return position{}, errInvalidCursor
	}
	eff, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return position{}, fmt.Errorf("%w: %w", errInvalidCursor, err)
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return position{}, fmt.Errorf("%w: %w", errInvalidCursor, err)
	}
	sum, err := strconv.ParseUint(parts[3], 16, 32)
	if err != nil {
		return position{}, fmt.Errorf("%w: %w", errInvalidCursor, err)
	}
	body := strings.Join(parts[:3], ".")
	if uint32(sum) != crc32.ChecksumIEEE([]byte(body)) {
		return position{}, fmt.Errorf("%w: checksum mismatch", errInvalidCursor)
	}
	p := position{EffectiveAt: eff, Seq: seq}
	if encodeCursor(p) != s {
		return position{}, fmt.Errorf("%w: not canonical", errInvalidCursor)
	}
	return p, nil
}
