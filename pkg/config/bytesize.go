package config

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

// ByteSize is an amount of memory in bytes. In configuration it is written
// with a unit, binary ("256MiB", "1GiB") or decimal ("300MB"), or as a
// plain number of bytes; it prints in binary units ("256 MiB").
type ByteSize int64

// Common sizes.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

// ParseByteSize parses s the way configuration does.
func ParseByteSize(s string) (ByteSize, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: write a number of bytes or one with a unit, like 256MiB or 1GiB", s)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n), nil
}

// RoundUp returns b rounded up to a multiple of unit (e.g. MiB).
func (b ByteSize) RoundUp(unit ByteSize) ByteSize { return (b + unit - 1) / unit * unit }

// Bytes returns the size as an int64.
func (b ByteSize) Bytes() int64 { return int64(b) }

// String implements fmt.Stringer, exactly: in the largest binary unit
// that divides the size ("256 MiB"), else in bytes ("300000000 B").
func (b ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b >= u.size && b%u.size == 0 {
			return fmt.Sprintf("%d %s", b/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d B", int64(b))
}

// MarshalText implements encoding.TextMarshaler with String's form, which
// ParseByteSize reads back.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseByteSize.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}
