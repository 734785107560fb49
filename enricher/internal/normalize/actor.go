package normalize

// readActor reads an actor object (the next value) into r.actor. The
// first type error in document order is kept; past it only the rest of
// the object is validated.
func (r *reader) readActor() error {
	r.actor = actorState{}
	a := &r.actor
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return r.fields(func(name string) error {
		switch name {
		case "type":
			return r.actorString("actor", name, &a.typ)
		case "session":
			return r.actorObject("actor.session", r.readSession)
		case "api_key":
			return r.actorObject("actor.api_key", r.readAPIKey)
		}
		return r.skip()
	})
}

// readSession reads actor.session (its '{' just read).
func (r *reader) readSession() error {
	const path = "actor.session"
	a := &r.actor
	return r.fields(func(name string) error {
		switch name {
		case "ip_address":
			return r.actorString(path, name, &a.ip)
		case "user_agent":
			return r.actorString(path, name, &a.userAgent)
		case "ja3":
			return r.actorString(path, name, &a.ja3)
		case "ja4":
			return r.actorString(path, name, &a.ja4)
		case "user":
			return r.actorObject(path+".user", func() error { return r.readUser(path+".user", &a.sessUserID, &a.sessEmail) })
		case "ip_address_details":
			if a.err == nil && r.dec.PeekKind() == '{' {
				return r.readDetails()
			}
		}
		return r.skip()
	})
}

// readAPIKey reads actor.api_key (its '{' just read).
func (r *reader) readAPIKey() error {
	const path = "actor.api_key"
	a := &r.actor
	return r.fields(func(name string) error {
		switch name {
		case "id":
			return r.actorString(path, name, &a.apiKeyID)
		case "type":
			return r.actorString(path, name, &a.apiKeyType)
		case "user":
			return r.actorObject(path+".user", func() error { return r.readUser(path+".user", &a.keyUserID, &a.keyEmail) })
		case "service_account":
			return r.actorObject(path+".service_account", func() error {
				return r.fields(func(name string) error {
					if name == "id" {
						return r.actorString(path+".service_account", name, &a.serviceAccount)
					}
					return r.skip()
				})
			})
		}
		return r.skip()
	})
}

// readUser reads a user object of the actor (its '{' just read): its id
// and email.
func (r *reader) readUser(path string, id, email *string) error {
	return r.fields(func(name string) error {
		switch name {
		case "id":
			return r.actorString(path, name, id)
		case "email":
			return r.actorString(path, name, email)
		}
		return r.skip()
	})
}

// readDetails reads actor.session.ip_address_details (the next value) as
// lenient text.
func (r *reader) readDetails() error {
	a := &r.actor
	a.hasDetails = true
	a.country, a.city, a.region, a.regionCode, a.asn, a.lat, a.lon = "", "", "", "", "", "", ""
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return r.fields(func(name string) error {
		var dst *string
		switch name {
		case "country":
			dst = &a.country
		case "city":
			dst = &a.city
		case "region":
			dst = &a.region
		case "region_code":
			dst = &a.regionCode
		case "asn":
			dst = &a.asn
		case "latitude":
			dst = &a.lat
		case "longitude":
			dst = &a.lon
		default:
			return r.skip()
		}
		v, err := r.scalar()
		if err == nil {
			*dst = lenient(v)
		}
		return err
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

// actorObject reads the next value, an object of the actor at path: read
// reads it (after its '{') while the actor has no error; null is no
// object; any other kind is the actor's error.
func (r *reader) actorObject(path string, read func() error) error {
	if r.actor.err != nil || r.dec.PeekKind() != '{' {
		v, err := r.scalar()
		if err == nil && r.actor.err == nil {
			_, r.actor.err = isObject(v.kind, path)
		}
		return err
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	return read()
}
