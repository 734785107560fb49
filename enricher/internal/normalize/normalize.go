package normalize

import (
	"bytes"
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
	"time"
	"unicode/utf8"

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

// Header names the poller sets (design.md), plus the optional tags header.
const (
	HeaderWorkspaceID = "workspace_id"
	HeaderSourceID    = "source_id"
	HeaderSourceType  = "source_type"
	HeaderSourceTTL   = "source_ttl"
	HeaderReceivedAt  = "received_at"
	HeaderTags        = "tags"
)

// ParseMeta builds Meta from header values looked up with get. A missing
// received_at falls back to fallbackTime (the record timestamp); a
// missing source_ttl is 0 (keep forever). staticTags (may be nil) are the
// configured tags of the source; a tags header holding a JSON object of
// strings adds to and overrides them. Malformed source_ttl, received_at or
// tags headers are permanent errors (ReasonInvalidHeader).
func ParseMeta(get func(key string) (string, bool), fallbackTime time.Time, staticTags map[string]string) (Meta, error) {
	var m Meta
	m.WorkspaceID, _ = get(HeaderWorkspaceID)
	m.SourceID, _ = get(HeaderSourceID)
	m.SourceType, _ = get(HeaderSourceType)
	if m.SourceType == "" {
		m.SourceType = ServiceName
	}
	if v, ok := get(HeaderSourceTTL); ok && v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return Meta{}, fail(ReasonInvalidHeader, "header %s %q: not a day count", HeaderSourceTTL, v)
		}
		m.SourceTTL = int64(n)
	}
	m.ReceivedAt = fallbackTime.UTC()
	if v, ok := get(HeaderReceivedAt); ok && v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Meta{}, fail(ReasonInvalidHeader, "header %s %q: not RFC 3339", HeaderReceivedAt, v)
		}
		m.ReceivedAt = t.UTC()
	}
	if v, ok := get(HeaderTags); ok && v != "" {
		var tags map[string]string
		if err := json.Unmarshal([]byte(v), &tags); err != nil {
			return Meta{}, fail(ReasonInvalidHeader, "header %s: want a JSON object of strings: %v", HeaderTags, err)
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
}

// RecordID is the deterministic id column: the lowercase hex of the first
// 16 bytes of SHA-256(sourceID + "/" + eventID). A replay of the same
// event from the same source yields the same id.
func RecordID(sourceID, eventID string) string {
	h := sha256.New()
	h.Write([]byte(sourceID))
	h.Write([]byte{'/'})
	h.Write([]byte(eventID))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// event holds the spans of the top-level members Normalize reads.
type event struct {
	id, typ, effectiveAt, project, actor member
	// objects are the other object-valued members: the payload is the one
	// named after the type (usually the only one).
	objects []member
}

// Normalize maps one raw event and its Meta to a Result. It never panics;
// every failure is an *Error naming a permanent Reason. The event is
// parsed in one validating pass; raw is not retained except as the rawLog
// string copy.
func Normalize(raw []byte, meta Meta) (Result, error) {
	if len(raw) > MaxEventBytes {
		return Result{}, fail(ReasonTooLarge, "event is %d bytes, limit %d", len(raw), MaxEventBytes)
	}
	if !utf8.Valid(raw) {
		return Result{}, fail(ReasonInvalidUTF8, "event is not valid UTF-8")
	}
	start := skipWS(raw, 0)
	if start >= len(raw) || raw[start] != '{' {
		return Result{}, fail(ReasonInvalidJSON, "event is not a JSON object")
	}
	var ev event
	var objs [2]member
	ev.objects = objs[:0]
	end, err := scanObject(raw, start, 1, func(m member) error {
		switch string(m.keyBytes()) {
		case "id":
			ev.id = m
		case "type":
			ev.typ = m
		case "effective_at":
			ev.effectiveAt = m
		case "project":
			ev.project = m
		case "actor":
			ev.actor = m
		default:
			if m.kind == kindObject {
				ev.objects = append(ev.objects, m)
			}
		}
		return nil
	})
	if err == nil && skipWS(raw, end) != len(raw) {
		err = syntaxErr(end, "data after the object")
	}
	if err != nil {
		return Result{}, fail(ReasonInvalidJSON, "decoding event: %v", err)
	}

	var r Result
	l := &r.Log
	l.RawLog = string(raw)
	d := &doc{raw: raw, s: l.RawLog}
	eventID, err := requiredString(d, ev.id, "id")
	if err != nil {
		return Result{}, err
	}
	typ, err := requiredString(d, ev.typ, "type")
	if err != nil {
		return Result{}, err
	}
	eff, err := effectiveAt(ev.effectiveAt)
	if err != nil {
		return Result{}, err
	}

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

	if err := parseProject(d, l, ev.project); err != nil {
		return Result{}, err
	}
	if err := parseActor(d, &r, ev.actor); err != nil {
		return Result{}, err
	}
	if l.Actor == nil {
		l.Actor = map[string]string{}
	}

	// The payload is the member named after the type (the last one, as
	// encoding/json would pick).
	var payload []byte
	for i := len(ev.objects) - 1; i >= 0; i-- {
		if m := ev.objects[i]; m.is(typ) {
			payload = m.val
			break
		}
	}
	l.Resources = resources(d, payload, l.ProjectID)

	l.Tags = make(map[string]string, len(meta.Tags)+2)
	maps.Copy(l.Tags, meta.Tags)
	l.Tags["category"] = Category(typ)
	if a := Action(typ); a != "" {
		l.Tags["action"] = a
	}
	l.Enrichments = []schema.Enrichment{}
	return r, nil
}

func requiredString(d *doc, m member, key string) (string, error) {
	switch m.kind {
	case 0, kindNull:
		return "", fail(ReasonMissingField, "field %q is missing", key)
	case kindString:
	default:
		return "", fail(ReasonWrongType, "field %q: want a string, got %s", key, m.kind)
	}
	s := d.str(m.val)
	if s == "" {
		return "", fail(ReasonMissingField, "field %q is empty", key)
	}
	return s, nil
}

// effectiveAt parses Unix seconds; an integral float (1.7e9) is accepted.
func effectiveAt(m member) (time.Time, error) {
	switch m.kind {
	case 0, kindNull:
		return time.Time{}, fail(ReasonMissingField, `field "effective_at" is missing`)
	case kindNumber:
	default:
		return time.Time{}, fail(ReasonWrongType, `field "effective_at": want Unix seconds, got %s`, m.kind)
	}
	s := string(m.val)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) {
			return time.Time{}, fail(ReasonWrongType, `field "effective_at": want integer Unix seconds, got %.40s`, s)
		}
		if f < 0 || f > math.MaxUint32 {
			return time.Time{}, fail(ReasonOutOfRange, `field "effective_at" %.40s outside 1970..2106`, s)
		}
		n = int64(f)
	}
	if n < 0 || n > math.MaxUint32 {
		return time.Time{}, fail(ReasonOutOfRange, `field "effective_at" %d outside 1970..2106`, n)
	}
	return time.Unix(n, 0).UTC(), nil
}

// object checks that m is an object (or absent/null: ok false).
func object(m member, path string) (bool, error) {
	switch m.kind {
	case 0, kindNull:
		return false, nil
	case kindObject:
		return true, nil
	}
	return false, fail(ReasonWrongType, "field %q: want an object, got %s", path, m.kind)
}

// optString reads an optional string member into dst.
func optString(d *doc, m member, path string, dst *string) error {
	switch m.kind {
	case kindNull:
		return nil
	case kindString:
		*dst = d.str(m.val)
		return nil
	}
	return fail(ReasonWrongType, "field %q: want a string, got %s", path+"."+m.name(), m.kind)
}

func parseProject(d *doc, l *schema.AuditLog, m member) error {
	if ok, err := object(m, "project"); !ok {
		return err
	}
	return eachMember(m.val, func(f member) error {
		switch string(f.keyBytes()) {
		case "id":
			return optString(d, f, "project", &l.ProjectID)
		case "name":
			return optString(d, f, "project", &l.ProjectName)
		}
		return nil
	})
}

func parseUser(d *doc, m member, path string, id, email *string) error {
	if ok, err := object(m, path); !ok {
		return err
	}
	return eachMember(m.val, func(f member) error {
		switch string(f.keyBytes()) {
		case "id":
			return optString(d, f, path, id)
		case "email":
			return optString(d, f, path, email)
		}
		return nil
	})
}

// actorFields are the actor's fields that have no column of their own.
type actorFields struct {
	ip, userAgent, ja3, ja4                    string
	sessUserID, sessEmail, keyUserID, keyEmail string
	details                                    []byte
}

func parseSession(d *doc, m member, a *actorFields) error {
	const path = "actor.session"
	if ok, err := object(m, path); !ok {
		return err
	}
	return eachMember(m.val, func(f member) error {
		switch string(f.keyBytes()) {
		case "ip_address":
			return optString(d, f, path, &a.ip)
		case "user_agent":
			return optString(d, f, path, &a.userAgent)
		case "ja3":
			return optString(d, f, path, &a.ja3)
		case "ja4":
			return optString(d, f, path, &a.ja4)
		case "user":
			return parseUser(d, f, path+".user", &a.sessUserID, &a.sessEmail)
		case "ip_address_details":
			if f.kind == kindObject { // parsed leniently: anything else is ignored
				a.details = f.val
			}
		}
		return nil
	})
}

func parseAPIKey(d *doc, m member, l *schema.AuditLog, a *actorFields) error {
	const path = "actor.api_key"
	if ok, err := object(m, path); !ok {
		return err
	}
	return eachMember(m.val, func(f member) error {
		switch string(f.keyBytes()) {
		case "id":
			return optString(d, f, path, &l.APIKeyID)
		case "type":
			return optString(d, f, path, &l.APIKeyType)
		case "user":
			return parseUser(d, f, path+".user", &a.keyUserID, &a.keyEmail)
		case "service_account":
			const sp = path + ".service_account"
			if ok, err := object(f, sp); !ok {
				return err
			}
			return eachMember(f.val, func(g member) error {
				if g.is("id") {
					return optString(d, g, sp, &l.ServiceAccountID)
				}
				return nil
			})
		}
		return nil
	})
}

func parseActor(d *doc, r *Result, m member) error {
	if ok, err := object(m, "actor"); !ok {
		return err
	}
	l := &r.Log
	var a actorFields
	err := eachMember(m.val, func(f member) error {
		switch string(f.keyBytes()) {
		case "type":
			return optString(d, f, "actor", &l.ActorType)
		case "session":
			return parseSession(d, f, &a)
		case "api_key":
			return parseAPIKey(d, f, l, &a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if a.ip != "" {
		addr, err := netip.ParseAddr(strings.TrimSpace(a.ip))
		if err != nil || addr.Zone() != "" {
			return fail(ReasonInvalidIP, "actor.session.ip_address %.64q is not an IP address", a.ip)
		}
		r.SrcIP = addr.Unmap()
		l.ActorIP = r.SrcIP.String()
		l.SrcIP = l.ActorIP
	}
	l.ActorUserID, l.ActorUserEmail = a.sessUserID, a.sessEmail
	if l.ActorUserID == "" && l.ActorUserEmail == "" {
		l.ActorUserID, l.ActorUserEmail = a.keyUserID, a.keyEmail
	}
	if a.details != nil {
		r.Details = parseDetails(d, a.details)
	}

	am := make(map[string]string, 10)
	put := func(k, v string) {
		if v != "" {
			am[k] = v
		}
	}
	put("type", l.ActorType)
	put("user_id", l.ActorUserID)
	put("user_email", l.ActorUserEmail)
	put("ip", l.ActorIP)
	put("user_agent", a.userAgent)
	put("ja3", a.ja3)
	put("ja4", a.ja4)
	put("api_key_id", l.APIKeyID)
	put("api_key_type", l.APIKeyType)
	put("service_account_id", l.ServiceAccountID)
	l.Actor = am
	return nil
}

// lenient returns a JSON scalar as text: a string unquoted, a number or
// boolean as written; null, objects and arrays give "".
func lenient(d *doc, m member) string {
	switch m.kind {
	case kindString:
		return strings.TrimSpace(d.str(m.val))
	case kindNumber, kindTrue, kindFalse:
		return string(m.val)
	}
	return ""
}

func parseDetails(dc *doc, obj []byte) IPDetails {
	var d IPDetails
	var asn, lat, lon string
	_ = eachMember(obj, func(m member) error {
		switch string(m.keyBytes()) {
		case "country":
			d.Country = strings.ToUpper(lenient(dc, m))
		case "city":
			d.City = lenient(dc, m)
		case "region":
			d.Region = lenient(dc, m)
		case "region_code":
			d.RegionCode = lenient(dc, m)
		case "asn":
			asn = lenient(dc, m)
		case "latitude":
			lat = lenient(dc, m)
		case "longitude":
			lon = lenient(dc, m)
		}
		return nil
	})
	asn = strings.TrimPrefix(strings.TrimPrefix(asn, "AS"), "as")
	if n, err := strconv.ParseUint(asn, 10, 32); err == nil {
		d.ASN = int64(n)
	}
	la, errLat := strconv.ParseFloat(lat, 64)
	lo, errLon := strconv.ParseFloat(lon, 64)
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
func resources(d *doc, payload []byte, projectID string) []string {
	out := []string{}
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
	if payload != nil {
		_ = eachMember(payload, func(m member) error {
			if m.kind == kindString && m.is("id") {
				add(d.str(m.val))
			}
			return nil
		})
	}
	add(projectID)
	if payload != nil {
		walkIDs(d, kindObject, payload, 0, add)
	}
	return out
}

func walkIDs(d *doc, k kind, v []byte, depth int, add func(string)) {
	if depth > maxResourceDepth {
		return
	}
	switch k {
	case kindObject:
		_ = eachMember(v, func(m member) error {
			name := m.keyBytes()
			switch m.kind {
			case kindString:
				if string(name) == "id" || bytes.HasSuffix(name, []byte("_id")) {
					add(d.str(m.val))
				} else if bytes.HasSuffix(name, []byte("_ids")) {
					for _, part := range strings.Split(d.str(m.val), ",") {
						add(part)
					}
				}
			case kindArray:
				if bytes.HasSuffix(name, []byte("_ids")) {
					_ = eachElement(m.val, func(ek kind, ev []byte) error {
						if ek == kindString {
							add(d.str(ev))
						}
						return nil
					})
					return nil
				}
				walkIDs(d, kindArray, m.val, depth+1, add)
			case kindObject:
				walkIDs(d, kindObject, m.val, depth+1, add)
			}
			return nil
		})
	case kindArray:
		_ = eachElement(v, func(ek kind, ev []byte) error {
			if ek == kindObject || ek == kindArray {
				walkIDs(d, ek, ev, depth+1, add)
			}
			return nil
		})
	}
}
