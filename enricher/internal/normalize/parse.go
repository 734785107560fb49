package normalize

import (
	"bytes"
	"strings"
)

// ctxKind says which object (or array) the scanner is in, as far as the
// parser cares.
type ctxKind uint8

const (
	ctxSkip           ctxKind = iota // validated only
	ctxTop                           // the event
	ctxProject                       // project
	ctxActor                         // actor
	ctxSession                       // actor.session
	ctxSessionUser                   // actor.session.user
	ctxDetails                       // actor.session.ip_address_details
	ctxAPIKey                        // actor.api_key
	ctxKeyUser                       // actor.api_key.user
	ctxServiceAccount                // actor.api_key.service_account
	ctxPayload                       // an object or array in the payload, walked for ids
	ctxIDs                           // a "*_ids" array in the payload
)

// ctx is a scanning context: the kind and, in the payload, the depth
// below the payload object (0).
type ctx struct {
	k     ctxKind
	depth int
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

// parser collects, during the validating scan, what Normalize reads: the
// top-level members, and the contents of the last project, the last actor
// and the payload. Objects that appear more than once at the top level
// are read again from scratch (the last one wins, as with encoding/json);
// duplicates inside them are read in turn, later values overwriting
// earlier ones.
type parser struct {
	d  doc
	ev event
	// typ is the last string "type" seen so far (hasTyp): an object
	// member of the event named after it is read as the payload.
	typ    string
	hasTyp bool

	projID, projName string
	projErr          error
	actor            actorState

	// payStart is the offset of the payload object read during the scan
	// (-1: none); direct holds its own "id" strings, walked every id
	// found walking it, in document order.
	payStart int
	direct   []string
	walked   []string
}

// child returns the context of member m's object or array value, which
// starts at b offset at.
func (p *parser) child(c ctx, m member, at int) ctx {
	key := m.keyBytes()
	isObj := p.d.raw[at] == '{'
	switch c.k {
	case ctxTop:
		switch string(key) {
		case "project":
			if isObj {
				p.projID, p.projName, p.projErr = "", "", nil
				return ctx{k: ctxProject}
			}
		case "actor":
			if isObj {
				p.actor = actorState{}
				return ctx{k: ctxActor}
			}
		case "id", "type", "effective_at":
		default:
			if isObj && p.hasTyp && string(key) == p.typ {
				p.payStart = at
				p.direct, p.walked = p.direct[:0], p.walked[:0]
				return ctx{k: ctxPayload}
			}
		}
	case ctxActor:
		if p.actor.err != nil || !isObj {
			return ctx{}
		}
		switch string(key) {
		case "session":
			return ctx{k: ctxSession}
		case "api_key":
			return ctx{k: ctxAPIKey}
		}
	case ctxSession:
		if p.actor.err != nil || !isObj {
			return ctx{}
		}
		switch string(key) {
		case "user":
			return ctx{k: ctxSessionUser}
		case "ip_address_details":
			a := &p.actor
			a.hasDetails = true
			a.country, a.city, a.region, a.regionCode, a.asn, a.lat, a.lon = "", "", "", "", "", "", ""
			return ctx{k: ctxDetails}
		}
	case ctxAPIKey:
		if p.actor.err != nil || !isObj {
			return ctx{}
		}
		switch string(key) {
		case "user":
			return ctx{k: ctxKeyUser}
		case "service_account":
			return ctx{k: ctxServiceAccount}
		}
	case ctxPayload:
		if !isObj && bytes.HasSuffix(key, []byte("_ids")) {
			return ctx{k: ctxIDs}
		}
		if c.depth+1 <= maxResourceDepth {
			return ctx{k: ctxPayload, depth: c.depth + 1}
		}
	}
	return ctx{}
}

// elementChild returns the context of an object or array element of an
// array read in context c.
func (p *parser) elementChild(c ctx) ctx {
	if c.k == ctxPayload && c.depth+1 <= maxResourceDepth {
		return ctx{k: ctxPayload, depth: c.depth + 1}
	}
	return ctx{}
}

// element takes one element of an array read in context c.
func (p *parser) element(c ctx, k kind, v []byte) {
	if c.k == ctxIDs && k == kindString {
		p.walked = append(p.walked, p.d.str(v))
	}
}

// actorString reads an optional string member of the actor into dst,
// keeping the first error.
func (p *parser) actorString(m member, path string, dst *string) {
	if p.actor.err == nil {
		p.actor.err = optString(&p.d, m, path, dst)
	}
}

// actorObject checks that member m of path is an object or null.
func (p *parser) actorObject(m member, path string) {
	if p.actor.err == nil {
		_, p.actor.err = object(m, path)
	}
}

// member takes one member of an object read in context c, after its
// value was scanned (and read, for an object or array in context).
func (p *parser) member(c ctx, m member) {
	a := &p.actor
	switch c.k {
	case ctxTop:
		switch string(m.keyBytes()) {
		case "id":
			p.ev.id = m
		case "type":
			p.ev.typ = m
			if m.kind == kindString {
				p.typ, p.hasTyp = p.d.str(m.val), true
			}
		case "effective_at":
			p.ev.effectiveAt = m
		case "project":
			p.ev.project = m
		case "actor":
			p.ev.actor = m
		default:
			if m.kind == kindObject {
				p.ev.objects = append(p.ev.objects, m)
			}
		}
	case ctxProject:
		if p.projErr != nil {
			return
		}
		switch string(m.keyBytes()) {
		case "id":
			p.projErr = optString(&p.d, m, "project", &p.projID)
		case "name":
			p.projErr = optString(&p.d, m, "project", &p.projName)
		}
	case ctxActor:
		if a.err != nil {
			return
		}
		switch string(m.keyBytes()) {
		case "type":
			p.actorString(m, "actor", &a.typ)
		case "session":
			p.actorObject(m, "actor.session")
		case "api_key":
			p.actorObject(m, "actor.api_key")
		}
	case ctxSession:
		if a.err != nil {
			return
		}
		const path = "actor.session"
		switch string(m.keyBytes()) {
		case "ip_address":
			p.actorString(m, path, &a.ip)
		case "user_agent":
			p.actorString(m, path, &a.userAgent)
		case "ja3":
			p.actorString(m, path, &a.ja3)
		case "ja4":
			p.actorString(m, path, &a.ja4)
		case "user":
			p.actorObject(m, path+".user")
		}
	case ctxSessionUser, ctxKeyUser:
		if a.err != nil {
			return
		}
		path, id, email := "actor.session.user", &a.sessUserID, &a.sessEmail
		if c.k == ctxKeyUser {
			path, id, email = "actor.api_key.user", &a.keyUserID, &a.keyEmail
		}
		switch string(m.keyBytes()) {
		case "id":
			p.actorString(m, path, id)
		case "email":
			p.actorString(m, path, email)
		}
	case ctxAPIKey:
		if a.err != nil {
			return
		}
		const path = "actor.api_key"
		switch string(m.keyBytes()) {
		case "id":
			p.actorString(m, path, &a.apiKeyID)
		case "type":
			p.actorString(m, path, &a.apiKeyType)
		case "user":
			p.actorObject(m, path+".user")
		case "service_account":
			p.actorObject(m, path+".service_account")
		}
	case ctxServiceAccount:
		if a.err == nil && m.is("id") {
			p.actorString(m, "actor.api_key.service_account", &a.serviceAccount)
		}
	case ctxDetails:
		switch string(m.keyBytes()) {
		case "country":
			a.country = lenient(&p.d, m)
		case "city":
			a.city = lenient(&p.d, m)
		case "region":
			a.region = lenient(&p.d, m)
		case "region_code":
			a.regionCode = lenient(&p.d, m)
		case "asn":
			a.asn = lenient(&p.d, m)
		case "latitude":
			a.lat = lenient(&p.d, m)
		case "longitude":
			a.lon = lenient(&p.d, m)
		}
	case ctxPayload:
		if m.kind != kindString {
			return
		}
		name := m.keyBytes()
		if string(name) == "id" || bytes.HasSuffix(name, []byte("_id")) {
			s := p.d.str(m.val)
			if c.depth == 0 && string(name) == "id" {
				p.direct = append(p.direct, s)
			}
			p.walked = append(p.walked, s)
		} else if bytes.HasSuffix(name, []byte("_ids")) {
			s := p.d.str(m.val)
			for {
				part, rest, more := strings.Cut(s, ",")
				p.walked = append(p.walked, part)
				if !more {
					break
				}
				s = rest
			}
		}
	}
}
