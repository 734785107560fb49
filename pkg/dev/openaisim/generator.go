package openaisim

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// generator makes audit-log items for one simulated organization. It is
// deterministic: the same seed and the same sequence of calls produce the
// same bytes. It is not safe for concurrent use.
type generator struct {
	r   *rand.Rand
	org organization
	// inv is the organization's inventory; every item the generator makes
	// is applied to it (inventory.go).
	inv *inventory
	// keyProject is the project of the inventory key actor drew last, for
	// project to attribute the event to.
	keyProject *Project
	cfg        Config
	// cumulative weights over eventTypes for weighted draws.
	cum []float64
}

func newGenerator(cfg Config) *generator {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15))
	g := &generator{r: r, cfg: cfg, org: newOrganization(r)}
	// The inventory's dates come from a stream of their own, so that the
	// audit log's draws do not depend on them.
	ir := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1a7e0))
	g.inv = newInventory(&g.org, ir, cfg.Now().Add(-cfg.BacklogSpan))
	total := 0.0
	for _, et := range eventTypes {
		total += typeWeight(et)
		g.cum = append(g.cum, total)
	}
	return g
}

// typeWeight is how often a type occurs relative to others: logins
// dominate real audit logs, tenant.* types are rarer than org types.
func typeWeight(et EventType) float64 {
	switch et.Name {
	case "login.succeeded":
		return 30
	case "logout.succeeded":
		return 8
	case "login.failed":
		return 4
	case "api_key.created", "api_key.updated", "api_key.deleted":
		return 3
	}
	if et.TenantScoped {
		return 0.3
	}
	return 1
}

// drawType picks a type: an unknown future type with probability
// cfg.UnknownTypeRate, else a weighted known type.
func (g *generator) drawType() string {
	if g.cfg.UnknownTypeRate > 0 && g.r.Float64() < g.cfg.UnknownTypeRate {
		return unknownEventTypes[g.r.IntN(len(unknownEventTypes))]
	}
	x := g.r.Float64() * g.cum[len(g.cum)-1]
	i, _ := slices.BinarySearch(g.cum, x)
	return eventTypes[min(i, len(eventTypes)-1)].Name
}

// backlog returns n items spread over [now-span, now], oldest first. When
// n >= 147 every known type occurs at least once. Items come in groups of
// cfg.SameSecondBurst sharing one effective_at second.
func (g *generator) backlog(n int, now time.Time, span time.Duration) [][]byte {
	if n <= 0 {
		return nil
	}
	types := make([]string, 0, n)
	if n >= len(eventTypes) {
		for _, et := range eventTypes {
			types = append(types, et.Name)
		}
	}
	for len(types) < n {
		types = append(types, g.drawType())
	}
	g.r.Shuffle(len(types), func(i, j int) { types[i], types[j] = types[j], types[i] })

	burst := max(g.cfg.SameSecondBurst, 1)
	groups := (n + burst - 1) / burst
	secs := make([]int64, groups)
	end := now.Unix()
	spanSec := max(int64(span/time.Second), 1)
	for i := range secs {
		secs[i] = end - g.r.Int64N(spanSec)
	}
	slices.Sort(secs)
	out := make([][]byte, 0, n)
	for i, t := range types {
		out = append(out, g.item(t, secs[i/burst]))
	}
	return out
}

// live returns one item effective now, or (with cfg.LateArrivalRate) a late
// arrival effective up to cfg.LateArrivalMaxAge ago. typ "" draws a type.
func (g *generator) live(typ string, now time.Time) (raw []byte, late bool) {
	eff := now.Unix()
	if g.cfg.LateArrivalRate > 0 && g.r.Float64() < g.cfg.LateArrivalRate {
		maxAge := max(int64(g.cfg.LateArrivalMaxAge/time.Second), 2)
		minAge := min(int64(60), maxAge/2)
		eff -= minAge + g.r.Int64N(maxAge-minAge+1)
		late = true
	}
	if typ == "" {
		typ = g.drawType()
	}
	return g.item(typ, eff), late
}

// item builds one audit-log object. Keys come in live order: object, id,
// type, effective_at, project, actor, then the payload named after the type.
func (g *generator) item(typ string, eff int64) []byte {
	r := g.r
	var b bytes.Buffer
	b.WriteString(`{"object":"organization.audit_log","id":`)
	writeJSON(&b, "audit_log-"+randAlnum(r, 24))
	b.WriteString(`,"type":`)
	writeJSON(&b, typ)
	b.WriteString(`,"effective_at":`)
	writeJSON(&b, eff)

	actor, key := g.actor(typ)
	if p := g.project(typ, key); p != nil {
		b.WriteString(`,"project":`)
		writeJSON(&b, p)
	}
	switch {
	case actor == nil && r.Float64() < 0.5:
		// actor absent
	case actor == nil:
		b.WriteString(`,"actor":null`)
	default:
		b.WriteString(`,"actor":`)
		writeJSON(&b, actor)
	}
	if payload, ok := g.payload(typ); ok {
		b.WriteString(`,`)
		writeJSON(&b, typ)
		b.WriteString(`:`)
		writeJSON(&b, payload)
	}
	b.WriteString(`}`)
	g.inv.apply(b.Bytes())
	return b.Bytes()
}

func writeJSON(b *bytes.Buffer, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only generator-built values of marshalable types reach here.
		panic("openaisim: marshalling generated value: " + err.Error())
	}
	b.Write(data)
}

// actor returns the actor of an event (nil for a null or absent actor) and
// the API key used, if any.
func (g *generator) actor(typ string) (*Actor, *orgKey) {
	r := g.r
	sessionOnly := strings.HasPrefix(typ, "login.") || strings.HasPrefix(typ, "logout.")
	x := r.Float64()
	switch {
	case !sessionOnly && x < 0.08:
		return nil, nil
	case sessionOnly || x < 0.55:
		u := g.org.users[r.IntN(len(g.org.users))]
		s := u.sessions[r.IntN(len(u.sessions))]
		if r.Float64() < 0.01 {
			// a one-off session from elsewhere
			n := r.IntN(len(networks))
			s = orgSession{ip: randAddr(r, n), network: n, client: r.IntN(len(clients))}
		}
		c, n := clients[s.client], networks[s.network]
		sess := &Session{
			User:      User{ID: u.id, Email: u.email},
			IPAddress: s.ip.String(),
			UserAgent: c.ua,
			IPAddressDetails: &IPAddressDetails{
				Country:    n.Country,
				City:       n.City,
				Region:     n.Region,
				RegionCode: n.RegionCode,
				ASN:        strconv.FormatUint(uint64(n.ASN), 10),
				Latitude:   n.Latitude(),
				Longitude:  n.Longitude(),
			},
		}
		if r.Float64() < 0.9 { // older events lack TLS fingerprints
			sess.JA3, sess.JA4 = c.ja3, c.ja4
		}
		return &Actor{Type: "session", Session: sess}, nil
	default:
		if a, project := g.liveKeyActor(); a != nil && r.Float64() < 0.5 {
			g.keyProject = project
			return a, nil
		}
		k := &g.org.keys[r.IntN(len(g.org.keys))]
		a := &APIKey{ID: k.id, Type: k.typ}
		if k.typ == "user" {
			u := g.org.users[k.owner]
			a.User = &User{ID: u.id, Email: u.email}
		} else {
			a.ServiceAccount = &ServiceAccount{ID: g.org.serviceAccounts[k.owner].id}
		}
		return &Actor{Type: "api_key", APIKey: a}, k
	}
}

// projectScoped lists type prefixes whose events usually carry a project.
var projectScoped = []string{"api_key.", "service_account.", "project.", "rate_limit.", "checkpoint.", "user.", "role.assignment.", "workload_identity_provider_mapping."}

// project returns the event's project or nil. Actions taken with an API key
// are attributed to the key's project (admin keys: the default project).
func (g *generator) project(typ string, key *orgKey) *Project {
	if p := g.keyProject; p != nil {
		g.keyProject = nil
		return p
	}
	if key != nil {
		p := g.org.projects[key.project]
		return &Project{ID: p.id, Name: p.name}
	}
	for _, pre := range projectScoped {
		// Keys and service accounts are created in a project: always say
		// which (the inventory lists them under it).
		if strings.HasPrefix(typ, pre) && (typ == "api_key.created" || typ == "service_account.created" || g.r.Float64() < 0.85) {
			return g.activeProject()
		}
	}
	return nil
}
