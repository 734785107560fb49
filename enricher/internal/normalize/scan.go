package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// A small validating JSON scanner: it checks RFC 8259 syntax exactly like
// encoding/json.Valid (on input already known to be UTF-8) while handing
// out the spans of object members, so an event is parsed in one pass with
// no intermediate maps.

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
// returns its kind and end.
func scanValue(b []byte, i, depth int) (kind, int, error) {
	if i >= len(b) {
		return 0, i, syntaxErr(i, "unexpected end")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return kindString, end, err
	case c == '{':
		end, err := scanObject(b, i, depth+1, nil)
		return kindObject, end, err
	case c == '[':
		end, err := scanArray(b, i, depth+1, nil)
		return kindArray, end, err
	case c == '-' || (c >= '0' && c <= '9'):
		end, err := scanNumber(b, i)
		return kindNumber, end, err
	case c == 't':
		return kindTrue, i + 4, literal(b, i, "true")
	case c == 'f':
		return kindFalse, i + 5, literal(b, i, "false")
	case c == 'n':
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

// scanString validates the string starting at b[i] == '"' and returns the
// index after the closing quote and whether it holds escapes.
func scanString(b []byte, i int) (int, bool, error) {
	esc := false
	j := i + 1
	// Most strings (keys, ids) are short: a plain loop beats IndexByte.
	for n := 0; n < 32 && j < len(b); n++ {
		c := b[j]
		if c == '"' {
			return j + 1, false, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		j++
	}
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b), esc, syntaxErr(len(b), "unterminated string")
		}
		seg := b[j : j+k]
		bs := bytes.IndexByte(seg, '\\')
		if bs >= 0 {
			seg = seg[:bs]
		}
		for n, c := range seg {
			if c < 0x20 {
				return j + n, esc, syntaxErr(j+n, "control character in string")
			}
		}
		if bs < 0 {
			return j + k + 1, esc, nil
		}
		// An escape before the quote found: check it, then look again
		// after it (the quote may have been escaped).
		esc = true
		j += bs + 1
		if j >= len(b) {
			return j, esc, syntaxErr(j, "unterminated escape")
		}
		switch b[j] {
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

// scanObject validates the object at b[i] == '{', calling fn (if not nil)
// for each member in document order; fn's error stops the scan.
func scanObject(b []byte, i, depth int, fn func(member) error) (int, error) {
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
		k, vend, err := scanValue(b, j, depth)
		if err != nil {
			return vend, err
		}
		m.kind, m.val = k, b[vstart:vend]
		if fn != nil {
			if err := fn(m); err != nil {
				return vend, err
			}
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

// scanArray validates the array at b[i] == '[', calling fn (if not nil)
// for each element.
func scanArray(b []byte, i, depth int, fn func(k kind, v []byte) error) (int, error) {
	if depth > maxDepth {
		return i, syntaxErr(i, "nesting too deep")
	}
	j := skipWS(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, nil
	}
	for {
		vstart := j
		k, vend, err := scanValue(b, j, depth)
		if err != nil {
			return vend, err
		}
		if fn != nil {
			if err := fn(k, b[vstart:vend]); err != nil {
				return vend, err
			}
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

// eachMember iterates a validated object span.
func eachMember(obj []byte, fn func(member) error) error {
	_, err := scanObject(obj, 0, 0, fn)
	return err
}

// eachElement iterates a validated array span.
func eachElement(arr []byte, fn func(k kind, v []byte) error) error {
	_, err := scanArray(arr, 0, 0, fn)
	return err
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
