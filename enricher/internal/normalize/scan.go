package normalize

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
)

// A small validating JSON scanner: it checks RFC 8259 syntax exactly like
// encoding/json.Valid (on input already known to be UTF-8) while handing
// the members of the objects Normalize reads to a parser, so an event is
// validated and read in one pass with no intermediate maps. Where a value
// sits (top level, actor, session, payload at some depth, …) is a ctx
// chosen by the parser before the value is scanned.

type kind byte

const (
	kindString kind = iota + 1
	kindNumber
	kindObject
	kindArray
	kindTrue
	kindFalse
	kindNull
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindNumber:
		return "number"
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	case kindTrue, kindFalse:
		return "boolean"
	case kindNull:
		return "null"
	}
	return "nothing"
}

// maxDepth bounds nesting; deeper documents are rejected as invalid JSON.
const maxDepth = 512

var errSyntax = errors.New("invalid JSON")

func syntaxErr(i int, what string) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, i, what)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue validates the value at b[i:] (no leading whitespace) and
// returns its kind and end. Objects and arrays are read in context c.
func (p *parser) scanValue(b []byte, i, depth int, c ctx) (kind, int, error) {
	if i >= len(b) {
		return 0, i, syntaxErr(i, "unexpected end")
	}
	switch ch := b[i]; {
	case ch == '"':
		end, _, err := scanString(b, i)
		return kindString, end, err
	case ch == '{':
		end, err := p.scanObject(b, i, depth+1, c)
		return kindObject, end, err
	case ch == '[':
		end, err := p.scanArray(b, i, depth+1, c)
		return kindArray, end, err
	case ch == '-' || (ch >= '0' && ch <= '9'):
		end, err := scanNumber(b, i)
		return kindNumber, end, err
	case ch == 't':
		return kindTrue, i + 4, literal(b, i, "true")
	case ch == 'f':
		return kindFalse, i + 5, literal(b, i, "false")
	case ch == 'n':
		return kindNull, i + 4, literal(b, i, "null")
	}
	return 0, i, syntaxErr(i, "unexpected character")
}

func literal(b []byte, i int, lit string) error {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return syntaxErr(i, "invalid literal")
	}
	return nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// SWAR constants: one in every byte, and every byte's high bit.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special returns a mask with the high bit set in the first byte of w
// (little endian) that is '"', '\\' or a control character, and maybe in
// later ones; 0 if there is none.
func special(w uint64) uint64 {
	m := (w - lsb*0x20) &^ w
	x := w ^ (lsb * '"')
	m |= (x - lsb) &^ x
	x = w ^ (lsb * '\\')
	m |= (x - lsb) &^ x
	return m & msb
}

// scanString validates the string starting at b[i] == '"' and returns the
// index after the closing quote and whether it holds escapes. Errors are
// those of a scan that first looks for the next quote: without one, the
// string is unterminated whatever comes before.
func scanString(b []byte, i int) (int, bool, error) {
	esc := false
	j := i + 1
	quote := -1 // a '"' at or after j, once looked for
	for {
		for j+8 <= len(b) {
			if m := special(binary.LittleEndian.Uint64(b[j:])); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for j < len(b) {
			if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
				break
			}
			j++
		}
		if j >= len(b) {
			return len(b), esc, syntaxErr(len(b), "unterminated string")
		}
		if b[j] == '"' {
			return j + 1, esc, nil
		}
		if quote < j {
			quote = bytes.IndexByte(b[j:], '"')
			if quote < 0 {
				return len(b), esc, syntaxErr(len(b), "unterminated string")
			}
			quote += j
		}
		if b[j] != '\\' {
			return j, esc, syntaxErr(j, "control character in string")
		}
		esc = true
		j++
		switch b[j] { // j <= quote < len(b)
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j++
		case 'u':
			if len(b)-j < 5 || !isHex(b[j+1]) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) {
				return j, esc, syntaxErr(j, "invalid \\u escape")
			}
			j += 5
		default:
			return j, esc, syntaxErr(j, "invalid escape")
		}
	}
}

func scanNumber(b []byte, i int) (int, error) {
	j := i
	if b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return j, syntaxErr(j, "invalid number")
	}
	if j < len(b) && b[j] == '.' {
		j++
		start := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == start {
			return j, syntaxErr(j, "invalid fraction")
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		start := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == start {
			return j, syntaxErr(j, "invalid exponent")
		}
	}
	return j, nil
}

// member is one object member: the raw key (without quotes, escapes
// undecoded) and the value span.
type member struct {
	key    []byte
	keyEsc bool
	kind   kind
	val    []byte
}

// keyBytes returns the decoded key; switch on string(m.keyBytes()) to
// compare without allocating.
func (m member) keyBytes() []byte {
	if !m.keyEsc {
		return m.key
	}
	return []byte(m.name())
}

// name returns the decoded key.
func (m member) name() string {
	if !m.keyEsc {
		return string(m.key)
	}
	var s string
	_ = json.Unmarshal(append(append([]byte{'"'}, m.key...), '"'), &s) // validated already
	return s
}

// is reports whether the key equals s (without allocating for plain keys).
func (m member) is(s string) bool {
	if !m.keyEsc {
		return string(m.key) == s
	}
	return m.name() == s
}

// scanObject validates the object at b[i] == '{', handing each member
// to p.member in document order (unless c is ctxSkip). The context of a
// member's object or array value is p.child's choice.
func (p *parser) scanObject(b []byte, i, depth int, c ctx) (int, error) {
	if depth > maxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	j := skipWS(b, i+1)
	if j < len(b) && b[j] == '}' {
		return j + 1, nil
	}
	var m member
	for {
		if j >= len(b) || b[j] != '"' {
			return j, syntaxErr(j, "want object key")
		}
		kend, kesc, err := scanString(b, j)
		if err != nil {
			return kend, err
		}
		m.key, m.keyEsc = b[j+1:kend-1], kesc
		j = skipWS(b, kend)
		if j >= len(b) || b[j] != ':' {
			return j, syntaxErr(j, "want ':'")
		}
		j = skipWS(b, j+1)
		vstart := j
		cc := ctx{}
		if c.k != ctxSkip && j < len(b) && (b[j] == '{' || b[j] == '[') {
			cc = p.child(c, m, j)
		}
		k, vend, err := p.scanValue(b, j, depth, cc)
		if err != nil {
			return vend, err
		}
		if c.k != ctxSkip {
			m.kind, m.val = k, b[vstart:vend]
			p.member(c, m)
		}
		j = skipWS(b, vend)
		if j >= len(b) {
			return j, syntaxErr(j, "unterminated object")
		}
		switch b[j] {
		case ',':
			j = skipWS(b, j+1)
		case '}':
			return j + 1, nil
		default:
			return j, syntaxErr(j, "want ',' or '}'")
		}
	}
}

// scanArray validates the array at b[i] == '[', handing each element to
// p.element (unless c is ctxSkip).
func (p *parser) scanArray(b []byte, i, depth int, c ctx) (int, error) {
	if depth > maxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	j := skipWS(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, nil
	}
	for {
		vstart := j
		cc := ctx{}
		if c.k != ctxSkip && j < len(b) && (b[j] == '{' || b[j] == '[') {
			cc = p.elementChild(c)
		}
		k, vend, err := p.scanValue(b, j, depth, cc)
		if err != nil {
			return vend, err
		}
		if c.k != ctxSkip {
			p.element(c, k, b[vstart:vend])
		}
		j = skipWS(b, vend)
		if j >= len(b) {
			return j, syntaxErr(j, "unterminated array")
		}
		switch b[j] {
		case ',':
			j = skipWS(b, j+1)
		case ']':
			return j + 1, nil
		default:
			return j, syntaxErr(j, "want ',' or ']'")
		}
	}
}

// doc is the document being normalized: its bytes and the same bytes as
// a string (the rawLog copy), so that strings without escapes are
// substrings of rawLog instead of new allocations.
type doc struct {
	raw []byte
	s   string
}

// str decodes a validated JSON string span v of d.raw.
func (d *doc) str(v []byte) string {
	body := v[1 : len(v)-1]
	if bytes.IndexByte(body, '\\') >= 0 {
		var s string
		_ = json.Unmarshal(v, &s) // validated already
		return s
	}
	// v is a subslice of d.raw: both capacities run to the end of the same
	// array, so their difference is v's offset.
	off := cap(d.raw) - cap(v) + 1
	if off < 1 || off+len(body) > len(d.s) {
		return string(body) // not from d.raw (never happens)
	}
	return d.s[off : off+len(body)]
}
