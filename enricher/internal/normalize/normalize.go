package normalize

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// ServiceName is the serviceName of every record.
const ServiceName = "openai"

// MaxEventBytes is the largest raw event accepted (1 MiB).
const MaxEventBytes = 1 << 20

// Reasons classify permanent errors; they are the dlq_reason header values
// and metric labels, so they never change.
const (
	ReasonTooLarge      = "too_large"
	ReasonInvalidUTF8   = "invalid_utf8"
	ReasonInvalidJSON   = "invalid_json"
	ReasonMissingField  = "missing_field"
	ReasonWrongType     = "wrong_type"
	ReasonInvalidIP     = "invalid_ip"
	ReasonOutOfRange    = "out_of_range"
	ReasonInvalidHeader = "invalid_header"
)

// Reasons lists every reason Normalize can return.
func Reasons() []string {
	return []string{ReasonTooLarge, ReasonInvalidUTF8, ReasonInvalidJSON, ReasonMissingField,
		ReasonWrongType, ReasonInvalidIP, ReasonOutOfRange, ReasonInvalidHeader}
}

// Error is a permanent normalization failure: the event can never be
// normalized as it is.
type Error struct {
	Reason string // one of the Reason* constants
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of a permanent error, or "" if err is not one.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Meta is what the record's Kafka headers (and the record itself) say about
// the event.
type Meta struct {
	WorkspaceID string
	SourceID    string
	SourceType  string
	SourceTTL   int64 // days
	ReceivedAt  time.Time
	// Tags are the source's static tags (from configuration and the
	// optional tags header); derived tags override them.
	Tags map[string]string
}

// ParseMeta builds Meta from header values looked up with get. A missing
// received_at falls back to fallbackTime (the record timestamp); a
// missing source_ttl is 0 (keep forever). staticTags (may be nil) are the
// configured tags of the source; a tags header holding a JSON object of
// strings adds to and overrides them. Malformed source_ttl, received_at or
// tags headers are permanent errors (ReasonInvalidHeader).
func ParseMeta(get func(key string) (string, bool), fallbackTime time.Time, staticTags map[string]string) (Meta, error) {
	var m Meta
	m.WorkspaceID, _ = get(contract.HeaderWorkspaceID)
	m.SourceID, _ = get(contract.HeaderSourceID)
	m.SourceType, _ = get(contract.HeaderSourceType)
	if m.SourceType == "" {
		m.SourceType = contract.SourceTypeOpenAI
	}
	if v, ok := get(contract.HeaderSourceTTL); ok && v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return Meta{}, fail(ReasonInvalidHeader, "header %s %q: not a day count", contract.HeaderSourceTTL, v)
		}
		m.SourceTTL = int64(n)
	}
	m.ReceivedAt = fallbackTime.UTC()
	if v, ok := get(contract.HeaderReceivedAt); ok && v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Meta{}, fail(ReasonInvalidHeader, "header %s %q: not RFC 3339", contract.HeaderReceivedAt, v)
		}
		m.ReceivedAt = t.UTC()
	}
	if v, ok := get(contract.HeaderTags); ok && v != "" {
		var tags map[string]string
		if err := json.Unmarshal([]byte(v), &tags); err != nil {
			return Meta{}, fail(ReasonInvalidHeader, "header %s: want a JSON object of strings: %v", contract.HeaderTags, err)
		}
		m.Tags = make(map[string]string, len(staticTags)+len(tags))
		maps.Copy(m.Tags, staticTags)
		maps.Copy(m.Tags, tags)
	} else {
		m.Tags = staticTags
	}
	return m, nil
}

// IPDetails is OpenAI's actor.session.ip_address_details, parsed
// leniently: values arrive as strings ("55256", "19.07283") or numbers,
// and an unparsable number is left unset.
type IPDetails struct {
	Country    string
	City       string
	Region     string
	RegionCode string
	ASN        int64 // 0 when absent
	Latitude   float64
	Longitude  float64
	HasCoords  bool // Latitude and Longitude were both present and valid
}

// Empty reports whether d carries nothing.
func (d IPDetails) Empty() bool {
	return d.Country == "" && d.City == "" && d.Region == "" && d.RegionCode == "" && d.ASN == 0 && !d.HasCoords
}

// Result is one normalized event.
type Result struct {
	// Log has every column except the src* geo columns and enrichments,
	// which the geo step fills.
	Log schema.AuditLog
	// SrcIP is the session address (the zero Addr when there is none),
	// IPv4-mapped IPv6 unmapped.
	SrcIP netip.Addr
	// Details is OpenAI's own geo data for SrcIP.
	Details IPDetails

	// rd is NormalizeTo's reader, kept for the next call.
	rd *reader
}

// RecordID is the deterministic id column: the lowercase hex of the first
// 16 bytes of SHA-256(sourceID + "/" + eventID). A replay of the same
// event from the same source yields the same id.
func RecordID(sourceID, eventID string) string {
	var buf [256]byte
	in := append(append(append(buf[:0], sourceID...), '/'), eventID...)
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}

// Normalize maps one raw event and its Meta to a Result. It never panics;
// every failure is an *Error naming a permanent Reason. The event is
// parsed in one validating pass; raw is not retained except as the rawLog
// string copy.
func Normalize(raw []byte, meta Meta) (Result, error) {
	rd, _ := readers.Get().(*reader)
	r := Result{rd: rd}
	err := NormalizeTo(&r, raw, meta)
	readers.Put(r.rd) // the Result shares none of the reader's memory
	if err != nil {
		return Result{}, err
	}
	r.rd = nil
	return r, nil
}

// readers recycles Normalize's readers (their decoder buffers and member
// tables).
var readers sync.Pool

// NormalizeTo is Normalize writing into dst, whose maps and slices (from
// an earlier call) are cleared and reused, so that a caller recycling
// Results allocates less. dst must not be in use elsewhere: the Result of
// the earlier call is overwritten. On error dst holds no useful value.
func NormalizeTo(dst *Result, raw []byte, meta Meta) error {
	return normalizeTo(dst, raw, meta, false)
}

// NormalizeShared is NormalizeTo without copying raw: dst.Log.RawLog and
// the strings read from the event share raw's memory, so raw must not be
// modified while dst (or any string taken from it) is in use. It saves a
// copy of every event when the caller keeps raw unchanged anyway.
func NormalizeShared(dst *Result, raw []byte, meta Meta) error {
	return normalizeTo(dst, raw, meta, true)
}

func normalizeTo(dst *Result, raw []byte, meta Meta, share bool) error {
	actor, tags, res, enr := dst.Log.Actor, dst.Log.Tags, dst.Log.Resources[:0], dst.Log.Enrichments[:0]
	clear(actor)
	rd := dst.rd
	if rd == nil {
		rd = new(reader)
	}
	*dst = Result{rd: rd}
	if err := normalize(dst, rd, raw, share, meta, actor, res); err != nil {
		return err
	}
	l := &dst.Log
	if l.Actor == nil {
		if actor == nil {
			actor = map[string]string{}
		}
		l.Actor = actor
	}
	if tags != nil {
		clear(tags)
	} else {
		tags = make(map[string]string, len(meta.Tags)+2)
	}
	maps.Copy(tags, meta.Tags)
	typ := l.EventName
	tags["category"] = Category(typ)
	if a := Action(typ); a != "" {
		tags["action"] = a
	}
	l.Tags = tags
	if enr == nil {
		enr = []schema.Enrichment{}
	}
	l.Enrichments = enr
	return nil
}

// normalize fills r (zero) but for tags and enrichments with rd, reusing
// rd's buffers, actor (empty, may be nil) and res (empty, may be nil).
// With share, rawLog is raw's memory rather than a copy.
func normalize(r *Result, rd *reader, raw []byte, share bool, meta Meta, actor map[string]string, res []string) error {
	if len(raw) > MaxEventBytes {
		return fail(ReasonTooLarge, "event is %d bytes, limit %d", len(raw), MaxEventBytes)
	}
	if !utf8.Valid(raw) {
		return fail(ReasonInvalidUTF8, "event is not valid UTF-8")
	}
	l := &r.Log
	if share {
		l.RawLog = unsafe.String(unsafe.SliceData(raw), len(raw))
	} else {
		l.RawLog = string(raw)
	}
	if err := rd.read(raw, l.RawLog); errors.Is(err, errNotObject) {
		return fail(ReasonInvalidJSON, "%v", err)
	} else if err != nil {
		return fail(ReasonInvalidJSON, "decoding event: %v", err)
	}
	ev := &rd.ev
	eventID, err := requiredString(ev.id, "id")
	if err != nil {
		return err
	}
	typ, err := requiredString(ev.typ, "type")
	if err != nil {
		return err
	}
	eff, err := effectiveAt(ev.effectiveAt)
	if err != nil {
		return err
	}
	setEvent(l, meta, eventID, typ, eff)

	if ok, err := isObject(ev.project, "project"); err != nil {
		return err
	} else if ok {
		if rd.projErr != nil {
			return rd.projErr
		}
		l.ProjectID, l.ProjectName = rd.projID, rd.projName
	}
	if ok, err := isObject(ev.actor, "actor"); err != nil {
		return err
	} else if ok {
		if err := setActor(r, &rd.actor, actor); err != nil {
			return err
		}
	}
	// The payload is the member named after the type (the last one, as
	// encoding/json would pick).
	if has, err := rd.payload(); err != nil {
		return fail(ReasonInvalidJSON, "decoding event: %v", err) // validated already
	} else if !has {
		rd.direct, rd.walked = rd.direct[:0], rd.walked[:0]
	}
	l.Resources = resources(rd.direct, l.ProjectID, rd.walked, res)
	return nil
}

// setEvent fills the columns of l that come from meta and the event's id,
// type and effective_at.
func setEvent(l *schema.AuditLog, meta Meta, eventID, typ string, eff time.Time) {
	l.WorkspaceID = meta.WorkspaceID
	l.SourceID = meta.SourceID
	l.SourceType = meta.SourceType
	l.SourceTTL = meta.SourceTTL
	l.ReceivedAt = meta.ReceivedAt
	l.ID = RecordID(meta.SourceID, eventID)
	l.EventID = eventID
	l.EventTime = eff
	l.EventName = typ
	l.EventType = Family(typ)
	l.ReadOnly = ReadOnly(typ)
	l.ServiceName = ServiceName
}

// setActor fills r's actor columns from a (read from an actor object),
// putting the actor map into am (empty, may be nil).
func setActor(r *Result, a *actorState, am map[string]string) error {
	if a.err != nil {
		return a.err
	}
	l := &r.Log
	l.ActorType, l.APIKeyID, l.APIKeyType, l.ServiceAccountID = a.typ, a.apiKeyID, a.apiKeyType, a.serviceAccount
	if a.ip != "" {
		ip := strings.TrimSpace(a.ip)
		addr, err := netip.ParseAddr(ip)
		if err != nil || addr.Zone() != "" {
			return fail(ReasonInvalidIP, "actor.session.ip_address %.64q is not an IP address", a.ip)
		}
		r.SrcIP = addr.Unmap()
		// Most addresses arrive in canonical form: keep the string then.
		var buf [64]byte
		if canon := r.SrcIP.AppendTo(buf[:0]); string(canon) == ip {
			l.ActorIP = ip
		} else {
			l.ActorIP = string(canon)
		}
		l.SrcIP = l.ActorIP
	}
	l.ActorUserID, l.ActorUserEmail = a.sessUserID, a.sessEmail
	if l.ActorUserID == "" && l.ActorUserEmail == "" {
		l.ActorUserID, l.ActorUserEmail = a.keyUserID, a.keyEmail
	}
	if a.hasDetails {
		r.Details = details(a)
	}

	entries := [...]struct{ k, v string }{
		{"type", l.ActorType}, {"user_id", l.ActorUserID}, {"user_email", l.ActorUserEmail}, {"ip", l.ActorIP},
		{"user_agent", a.userAgent}, {"ja3", a.ja3}, {"ja4", a.ja4}, {"api_key_id", l.APIKeyID},
		{"api_key_type", l.APIKeyType}, {"service_account_id", l.ServiceAccountID},
	}
	if am == nil {
		n := 0
		for _, e := range entries {
			if e.v != "" {
				n++
			}
		}
		am = make(map[string]string, n)
	}
	for _, e := range entries {
		if e.v != "" {
			am[e.k] = e.v
		}
	}
	l.Actor = am
	return nil
}

func requiredString(v value, key string) (string, error) {
	switch v.kind {
	case 0, kindNull:
		return "", fail(ReasonMissingField, "field %q is missing", key)
	case kindString:
	default:
		return "", fail(ReasonWrongType, "field %q: want a string, got %s", key, v.kind)
	}
	if v.text == "" {
		return "", fail(ReasonMissingField, "field %q is empty", key)
	}
	return v.text, nil
}

// effectiveAt parses Unix seconds; an integral float (1.7e9) is accepted.
// The time must be after the Unix epoch and fit ClickHouse's DateTime
// (up to 2106): 0 is no time but a missing one written as a number.
func effectiveAt(v value) (time.Time, error) {
	switch v.kind {
	case 0, kindNull:
		return time.Time{}, fail(ReasonMissingField, `field "effective_at" is missing`)
	case kindNumber:
	default:
		return time.Time{}, fail(ReasonWrongType, `field "effective_at": want Unix seconds, got %s`, v.kind)
	}
	s := v.text
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) {
			return time.Time{}, fail(ReasonWrongType, `field "effective_at": want integer Unix seconds, got %.40s`, s)
		}
		if f <= 0 || f > math.MaxUint32 {
			return time.Time{}, fail(ReasonOutOfRange, `field "effective_at" %.40s outside 1970-01-01T00:00:01Z..2106 (Unix 1..4294967295)`, s)
		}
		n = int64(f)
	}
	if n <= 0 || n > math.MaxUint32 {
		return time.Time{}, fail(ReasonOutOfRange, `field "effective_at" %d outside 1970-01-01T00:00:01Z..2106 (Unix 1..4294967295)`, n)
	}
	return time.Unix(n, 0).UTC(), nil
}

// isObject checks that a member of kind k is an object (or absent/null:
// false).
func isObject(k kind, path string) (bool, error) {
	switch k {
	case 0, kindNull:
		return false, nil
	case kindObject:
		return true, nil
	}
	return false, fail(ReasonWrongType, "field %q: want an object, got %s", path, k)
}

// optString reads an optional string member, name of the object at path,
// into dst.
func optString(v value, path, name string, dst *string) error {
	switch v.kind {
	case kindNull:
		return nil
	case kindString:
		*dst = v.text
		return nil
	}
	return fail(ReasonWrongType, "field %q: want a string, got %s", path+"."+name, v.kind)
}

// lenient returns a JSON scalar as text: a string unquoted, a number or
// boolean as written; null, objects and arrays give "".
func lenient(v value) string {
	switch v.kind {
	case kindString:
		return strings.TrimSpace(v.text)
	case kindNumber, kindTrue, kindFalse:
		return v.text
	}
	return ""
}

// details parses the lenient ip_address_details text of a.
func details(a *actorState) IPDetails {
	d := IPDetails{Country: strings.ToUpper(a.country), City: a.city, Region: a.region, RegionCode: a.regionCode}
	asn := strings.TrimPrefix(strings.TrimPrefix(a.asn, "AS"), "as")
	if n, err := strconv.ParseUint(asn, 10, 32); err == nil {
		d.ASN = int64(n)
	}
	la, errLat := strconv.ParseFloat(a.lat, 64)
	lo, errLon := strconv.ParseFloat(a.lon, 64)
	if errLat == nil && errLon == nil && la >= -90 && la <= 90 && lo >= -180 && lo <= 180 {
		d.Latitude, d.Longitude, d.HasCoords = la, lo, true
	}
	return d
}

// maxResourceDepth bounds how deep resources looks into the payload.
const maxResourceDepth = 4

// resources lists the ids an event acts on: the payload's id, the
// project's id, then, in document order, every other string under an "id"
// or "*_id" key and every element of a "*_ids" array (a "*_ids" string is
// split on commas) anywhere in the payload up to depth 4, deduplicated.
// direct are the payload's own "id" strings, walked every id found in the
// payload in document order; out (empty, may be nil) is reused.
func resources(direct []string, projectID string, walked []string, out []string) []string {
	if out == nil {
		out = []string{}
	}
	var seen map[string]bool // used once out is long, to stay linear
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		if seen == nil && len(out) >= 16 {
			seen = make(map[string]bool, 64)
			for _, o := range out {
				seen[o] = true
			}
		}
		if seen != nil {
			if seen[s] {
				return
			}
			seen[s] = true
		} else if slices.Contains(out, s) {
			return
		}
		out = append(out, s)
	}
	for _, s := range direct {
		add(s)
	}
	add(projectID)
	for _, s := range walked {
		add(s)
	}
	return out
}
