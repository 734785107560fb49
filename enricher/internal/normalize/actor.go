package normalize

// actorMember is a member of an object of the actor that Normalize reads:
// an optional string (str), a nested object (obj, called after its '{'
// while the actor has no error), or a value read by read.
type actorMember struct {
	name string
	str  *string
	obj  func() error
	read func() error
}

// actorMembers are the members each object of the actor has that
// Normalize reads. They point into one reader's actorState, so each
// reader builds its own once (actorMembersOf) and reuses them for every
// event.
type actorMembers struct {
	actor, session, apiKey, sessionUser, keyUser, serviceAccount []actorMember
	details                                                      []actorMember // read leniently
}

func (r *reader) actorMembersOf() *actorMembers {
	if r.members != nil {
		return r.members
	}
	a := &r.actor
	m := &actorMembers{}
	m.actor = []actorMember{{name: "type", str: &a.typ}, {name: "session", obj: func() error {
		return r.actorObjectMembers("actor.session", m.session)
	}}, {name: "api_key", obj: func() error { return r.actorObjectMembers("actor.api_key", m.apiKey) }}}
	m.session = []actorMember{{name: "ip_address", str: &a.ip}, {name: "user_agent", str: &a.userAgent},
		{name: "ja3", str: &a.ja3}, {name: "ja4", str: &a.ja4},
		{name: "user", obj: func() error { return r.actorObjectMembers("actor.session.user", m.sessionUser) }},
		{name: "ip_address_details", read: r.readDetails}}
	m.apiKey = []actorMember{{name: "id", str: &a.apiKeyID}, {name: "type", str: &a.apiKeyType},
		{name: "user", obj: func() error { return r.actorObjectMembers("actor.api_key.user", m.keyUser) }},
		{name: "service_account", obj: func() error {
			return r.actorObjectMembers("actor.api_key.service_account", m.serviceAccount)
		}}}
	m.sessionUser = []actorMember{{name: "id", str: &a.sessUserID}, {name: "email", str: &a.sessEmail}}
	m.keyUser = []actorMember{{name: "id", str: &a.keyUserID}, {name: "email", str: &a.keyEmail}}
	m.serviceAccount = []actorMember{{name: "id", str: &a.serviceAccount}}
	m.details = []actorMember{{name: "country", str: &a.country}, {name: "city", str: &a.city},
		{name: "region", str: &a.region}, {name: "region_code", str: &a.regionCode}, {name: "asn", str: &a.asn},
		{name: "latitude", str: &a.lat}, {name: "longitude", str: &a.lon}}
	r.members = m
	return m
}

// readActor reads an actor object (the next value) into r.actor. The
// first type error in document order is kept; past it only the rest of
// the object is validated.
func (r *reader) readActor() error {
	r.actor = actorState{}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return r.actorObjectMembers("actor", r.actorMembersOf().actor)
}

// actorObjectMembers reads the members of an object of the actor at path
// (its '{' just read): those named in ms as they say, the others only
// validated.
func (r *reader) actorObjectMembers(path string, ms []actorMember) error {
	return r.fields(func(name string) error {
		for _, m := range ms {
			switch {
			case m.name != name:
				continue
			case m.str != nil:
				return r.actorString(path, name, m.str)
			case m.obj != nil:
				return r.actorObject(path, name, m.obj)
			}
			return m.read()
		}
		return r.skip()
	})
}

// readDetails reads actor.session.ip_address_details (the next value) as
// lenient text, while the actor has no error and when it is an object;
// otherwise it only validates it.
func (r *reader) readDetails() error {
	a := &r.actor
	if a.err != nil || r.dec.PeekKind() != '{' {
		return r.skip()
	}
	a.hasDetails = true
	a.country, a.city, a.region, a.regionCode, a.asn, a.lat, a.lon = "", "", "", "", "", "", ""
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return r.fields(func(name string) error {
		for _, m := range r.members.details {
			if m.name == name {
				v, err := r.scalar()
				if err == nil {
					*m.str = lenient(v)
				}
				return err
			}
		}
		return r.skip()
	})
}

// actorString reads member name of the actor object at path (the next
// value) into dst: an optional string. It keeps the actor's first error.
func (r *reader) actorString(path, name string, dst *string) error {
	v, err := r.scalar()
	if err == nil && r.actor.err == nil {
		r.actor.err = optString(v, path, name, dst)
	}
	return err
}

// actorObject reads member name of the actor object at path (the next
// value), an object: read reads it (after its '{') while the actor has no
// error; null is no object; any other kind is the actor's error.
func (r *reader) actorObject(path, name string, read func() error) error {
	if r.actor.err != nil || r.dec.PeekKind() != '{' {
		v, err := r.scalar()
		if err == nil && r.actor.err == nil {
			_, r.actor.err = isObject(v.kind, path+"."+name)
		}
		return err
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return read()
}
