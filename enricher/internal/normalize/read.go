package normalize

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
)

// The event is read in one pass of a jsontext.Decoder (the Go team's
// encoding/json/v2 syntax layer), which validates the whole document while
// the reader below takes the members Normalize needs, with no intermediate
// maps. Duplicate names are allowed (the last one wins, as with
// encoding/json); invalid UTF-8 was rejected before reading, and lone
// surrogate escapes decode to U+FFFD, as with encoding/json.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// kind is a JSON value's kind, as error messages name it.
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

func kindOf(k jsontext.Kind) kind {
	switch k {
	case '"':
		return kindString
	case '0':
		return kindNumber
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't':
		return kindTrue
	case 'f':
		return kindFalse
	case 'n':
		return kindNull
	}
	return 0
}

// value is one member value the reader kept: its kind and its text (a
// string decoded, anything else as written).
type value struct {
	kind kind
	text string
}

// object is a top-level object member: its decoded name and where its
// value sits in the event.
type object struct {
	name       string
	start, end int
}

// event holds the top-level members Normalize reads.
type event struct {
	id, typ, effectiveAt value
	// project and actor are the kinds of the last such members (0: none).
	project, actor kind
	// objects are the other object-valued members: the payload is the one
	// named after the type (usually the only one).
	objects []object
}

// actorState is what the last top-level actor object says.
type actorState struct {
	err                                        error // the first, in document order
	typ, apiKeyID, apiKeyType, serviceAccount  string
	ip, userAgent, ja3, ja4                    string
	sessUserID, sessEmail, keyUserID, keyEmail string
	hasDetails                                 bool
	// ip_address_details of the last such object, as lenient text.
	country, city, region, regionCode, asn, lat, lon string
}

// reader collects, while the decoder validates the event, what Normalize
// reads: the top-level members, and the contents of the last project, the
// last actor and the payload. Objects that appear more than once at the
// top level are read again from scratch (the last one wins, as with
// encoding/json); duplicates inside them are read in turn, later values
// overwriting earlier ones. A reader is reused from event to event.
type reader struct {
	dec jsontext.Decoder
	in  bytes.Buffer
	// raw is the event and s the same bytes as a string (the rawLog):
	// strings without escapes are substrings of s instead of new
	// allocations. base is the offset in raw of what dec reads.
	raw  []byte
	s    string
	base int

	ev event
	// typ is the last string "type" seen so far (hasTyp): an object
	// member of the event named after it is read as the payload.
	typ    string
	hasTyp bool

	projID, projName string
	projErr          error
	actor            actorState
	members          *actorMembers // built on first use, point into actor

	// payStart is the offset of the payload object read during the pass
	// (-1: none); direct holds its own "id" strings, walked every id found
	// walking it, in document order.
	payStart int
	direct   []string
	walked   []string
}

var errNotObject = errors.New("event is not a JSON object")

// read validates raw (valid UTF-8, the same bytes as s) as one JSON object
// and reads its members. It returns errNotObject or a syntax error.
func (r *reader) read(raw []byte, s string) error {
	r.raw, r.s, r.typ, r.hasTyp, r.payStart = raw, s, "", false, -1
	r.ev = event{objects: r.ev.objects[:0]}
	r.projID, r.projName, r.projErr, r.actor = "", "", nil, actorState{}
	r.direct, r.walked = r.direct[:0], r.walked[:0]
	r.start(raw, 0)
	if r.dec.PeekKind() != '{' {
		return errNotObject
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	if err := r.fields(r.topField); err != nil {
		return err
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the object")
		}
		return err
	}
	return nil
}

// start points the decoder at b, which sits at offset base of the event.
func (r *reader) start(b []byte, base int) {
	r.in = *bytes.NewBuffer(b)
	r.base = base
	r.dec.Reset(&r.in, decodeOptions...)
}

// payload reads the payload again when it came before the type (so the
// pass did not read it) and returns whether the event has one.
func (r *reader) payload() (bool, error) {
	typ := r.ev.typ.text
	for i := len(r.ev.objects) - 1; i >= 0; i-- {
		o := r.ev.objects[i]
		if o.name != typ {
			continue
		}
		if o.start != r.payStart {
			r.direct, r.walked = r.direct[:0], r.walked[:0]
			r.start(r.raw[o.start:o.end], o.start)
			if _, err := r.dec.ReadToken(); err != nil {
				return false, err
			}
			return true, r.walkObject(0)
		}
		return true, nil
	}
	return false, nil
}

// text returns the text of v, which the decoder has just returned: a
// string decoded, anything else as written.
func (r *reader) text(v jsontext.Value) string {
	end := r.base + int(r.dec.InputOffset())
	start := end - len(v)
	if len(v) > 0 && v[0] == '"' {
		if bytes.IndexByte(v, '\\') >= 0 {
			b, _ := jsontext.AppendUnquote(nil, v) // validated: only lone surrogates are replaced
			return unsafe.String(unsafe.SliceData(b), len(b))
		}
		start, end = start+1, end-1
	}
	if start < 0 || end > len(r.s) || start > end {
		return string(v) // not from the event (never happens)
	}
	return r.s[start:end]
}

// scalar reads the next value (of any kind) and returns it.
func (r *reader) scalar() (value, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return value{}, err
	}
	return value{kind: kindOf(v.Kind()), text: r.text(v)}, nil
}

// skip reads (and so validates) the next value without keeping it.
func (r *reader) skip() error {
	_, err := r.dec.ReadValue()
	return err
}

// fields reads the members of the object whose '{' was just read, through
// its closing '}': field gets each name and must read its value.
func (r *reader) fields(field func(name string) error) error {
	for r.dec.PeekKind() != '}' {
		name, err := r.dec.ReadValue()
		if err != nil {
			return err
		}
		if err := field(r.text(name)); err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken()
	return err
}

// topField reads one member of the event.
func (r *reader) topField(name string) error {
	isObject := r.dec.PeekKind() == '{'
	switch {
	case name == "project" && isObject:
		r.ev.project = kindObject
		return r.readProject()
	case name == "actor" && isObject:
		r.ev.actor = kindObject
		return r.readActor()
	case isObject && name != "id" && name != "type" && name != "effective_at" && name != "project" && name != "actor":
		return r.topObject(name)
	case name != "id" && name != "type" && name != "effective_at" && name != "project" && name != "actor":
		return r.skip()
	}
	v, err := r.scalar()
	if err != nil {
		return err
	}
	switch name {
	case "id":
		r.ev.id = v
	case "type":
		r.ev.typ = v
		if v.kind == kindString {
			r.typ, r.hasTyp = v.text, true
		}
	case "effective_at":
		r.ev.effectiveAt = v
	case "project":
		r.ev.project = v.kind
	case "actor":
		r.ev.actor = v.kind
	}
	return nil
}

// topObject reads an object member of the event other than project and
// actor: walked as the payload when it is named after the type seen so
// far, validated only otherwise.
func (r *reader) topObject(name string) error {
	o := object{name: name}
	if r.hasTyp && name == r.typ {
		if _, err := r.dec.ReadToken(); err != nil {
			return err
		}
		o.start = r.base + int(r.dec.InputOffset()) - 1
		r.payStart = o.start
		r.direct, r.walked = r.direct[:0], r.walked[:0]
		if err := r.walkObject(0); err != nil {
			return err
		}
		o.end = r.base + int(r.dec.InputOffset())
	} else {
		v, err := r.dec.ReadValue()
		if err != nil {
			return err
		}
		o.end = r.base + int(r.dec.InputOffset())
		o.start = o.end - len(v)
	}
	r.ev.objects = append(r.ev.objects, o)
	return nil
}

// readProject reads a project object (the next value).
func (r *reader) readProject() error {
	r.projID, r.projName, r.projErr = "", "", nil
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return r.fields(func(name string) error {
		if r.projErr != nil || (name != "id" && name != "name") {
			return r.skip()
		}
		v, err := r.scalar()
		if err != nil {
			return err
		}
		dst := &r.projID
		if name == "name" {
			dst = &r.projName
		}
		r.projErr = optString(v, "project", name, dst)
		return nil
	})
}

// walkObject walks an object of the payload (its '{' just read) at depth
// (0: the payload itself) for ids: strings under "id" and "*_id", "*_ids"
// strings split on commas and "*_ids" arrays; objects and arrays below
// are walked down to maxResourceDepth.
func (r *reader) walkObject(depth int) error {
	return r.fields(func(name string) error {
		switch r.dec.PeekKind() {
		case '"':
			return r.payloadString(name, depth)
		case '[':
			if strings.HasSuffix(name, "_ids") {
				return r.readIDs()
			}
			return r.walkChild(depth)
		case '{':
			return r.walkChild(depth)
		}
		return r.skip()
	})
}

// payloadString reads the string member name of a payload object at
// depth (the next value): an id under "id" or "*_id", ids separated by
// commas under "*_ids"; other strings are only validated.
func (r *reader) payloadString(name string, depth int) error {
	isID := name == "id" || strings.HasSuffix(name, "_id")
	if !isID && !strings.HasSuffix(name, "_ids") {
		return r.skip()
	}
	v, err := r.dec.ReadValue()
	if err != nil {
		return err
	}
	s := r.text(v)
	if isID {
		if depth == 0 && name == "id" {
			r.direct = append(r.direct, s)
		}
		r.walked = append(r.walked, s)
		return nil
	}
	for {
		part, rest, more := strings.Cut(s, ",")
		r.walked = append(r.walked, part)
		if !more {
			return nil
		}
		s = rest
	}
}

// walkChild walks the object or array below a payload value at depth, or
// only validates it beyond maxResourceDepth.
func (r *reader) walkChild(depth int) error {
	if depth+1 > maxResourceDepth {
		return r.skip()
	}
	tok, err := r.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() == '{' {
		return r.walkObject(depth + 1)
	}
	for r.dec.PeekKind() != ']' {
		switch r.dec.PeekKind() {
		case '{', '[':
			err = r.walkChild(depth + 1)
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
	_, err = r.dec.ReadToken()
	return err
}

// readIDs reads a "*_ids" array of the payload: its strings are ids.
func (r *reader) readIDs() error {
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	for r.dec.PeekKind() != ']' {
		v, err := r.dec.ReadValue()
		if err != nil {
			return err
		}
		if v.Kind() == '"' {
			r.walked = append(r.walked, r.text(v))
		}
	}
	_, err := r.dec.ReadToken()
	return err
}
