package openaisim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Attack scenarios: short bursts of events that an attacker (or a careless
// administrator) leaves in the audit log. Each is named after the auditpipe
// detection rule it trips (schemas/detections/rules); AttackImpossibleTravel
// usually trips login_new_country too.
const (
	AttackCredentialStuffing      = "credential_stuffing"
	AttackPasswordSpraying        = "password_spraying"
	AttackBruteForceSuccess       = "brute_force_success"
	AttackMFAFailures             = "mfa_failures"
	AttackPrivilegedRoleAssigned  = "privileged_role_assigned"
	AttackAPIKeyElevatedScopes    = "api_key_elevated_scopes"
	AttackAdminAPIKeyCreated      = "admin_api_key_created"
	AttackIPAllowlistChanged      = "ip_allowlist_changed"
	AttackSCIMChanged             = "scim_changed"
	AttackOrgSecuritySettings     = "org_security_settings_changed"
	AttackImpossibleTravel        = "impossible_travel"
	AttackMassDeletion            = "mass_deletion"
	AttackCredentialCreationBurst = "credential_creation_burst"
	AttackInviteExternalDomain    = "invite_external_domain"
	AttackCertificateChanged      = "certificate_changed"
	AttackRateLimitRaised         = "rate_limit_raised"
	AttackDeletedPrincipalKey     = "deleted_principal_key_activity"
	AttackWorkloadIdentityTrust   = "workload_identity_trust_changed"
	// AttackAll names every scenario.
	AttackAll = "all"
)

// attackSpread is how long before its end a scenario starts: within the
// poller's overlap, so a live poller collects it.
const attackSpread = 90 * time.Second

// attackBuilders builds each scenario's events, oldest first, all within
// attackSpread before end.
var attackBuilders = map[string]func(g *generator, end int64) [][]byte{
	AttackCredentialStuffing:      (*generator).credentialStuffing,
	AttackPasswordSpraying:        (*generator).passwordSpraying,
	AttackBruteForceSuccess:       (*generator).bruteForceSuccess,
	AttackMFAFailures:             (*generator).mfaFailures,
	AttackPrivilegedRoleAssigned:  (*generator).privilegedRole,
	AttackAPIKeyElevatedScopes:    (*generator).elevatedKey,
	AttackAdminAPIKeyCreated:      (*generator).adminKey,
	AttackIPAllowlistChanged:      (*generator).allowlistRemoved,
	AttackSCIMChanged:             (*generator).scimDisabled,
	AttackOrgSecuritySettings:     (*generator).loggingDisabled,
	AttackImpossibleTravel:        (*generator).impossibleTravel,
	AttackMassDeletion:            (*generator).massDeletion,
	AttackCredentialCreationBurst: (*generator).creationBurst,
	AttackInviteExternalDomain:    (*generator).externalInvite,
	AttackCertificateChanged:      (*generator).certificateSwap,
	AttackRateLimitRaised:         (*generator).rateLimitRaise,
	AttackDeletedPrincipalKey:     (*generator).deletedUserKey,
	AttackWorkloadIdentityTrust:   (*generator).workloadTrust,
}

// AttackKinds returns the scenario names Attack accepts (besides
// AttackAll), sorted.
func AttackKinds() []string {
	out := make([]string, 0, len(attackBuilders))
	for k := range attackBuilders {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ParseAttackKinds splits a comma-separated list of scenario names
// ("all" for every one) and checks each.
func ParseAttackKinds(list string) ([]string, error) {
	var out []string
	for k := range strings.SplitSeq(list, ",") {
		switch k = strings.TrimSpace(k); {
		case k == "":
		case k == AttackAll:
			out = append(out, AttackKinds()...)
		case attackBuilders[k] != nil:
			out = append(out, k)
		default:
			return nil, fmt.Errorf("unknown attack scenario %q: want all or one of %s", k, strings.Join(AttackKinds(), ", "))
		}
	}
	return out, nil
}

// Attack makes the events of scenario kind (one of AttackKinds, or
// AttackAll for every one) visible now and returns them, oldest first.
// The events end at end (zero: now) and start at most 90 seconds earlier,
// so a poller that follows the log live collects them. They are drawn from
// the simulated organization with the simulator's seeded source.
func (s *Simulator) Attack(kind string, end time.Time) ([]Event, error) {
	kinds, err := ParseAttackKinds(kind)
	if err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("no attack scenario named: want all or one of %s", strings.Join(AttackKinds(), ", "))
	}
	if end.IsZero() {
		end = s.cfg.Now()
	}
	var raws [][]byte
	s.genMu.Lock()
	for _, k := range kinds {
		raws = append(raws, attackBuilders[k](s.gen, end.Unix())...)
	}
	s.genMu.Unlock()
	evs, err := s.addRaw(false, raws...)
	if err != nil {
		return evs, fmt.Errorf("adding attack events: %w", err)
	}
	s.log.Info("attack scenario generated", slog.Any("kinds", kinds), slog.Int("events", len(evs)))
	return evs, nil
}

// attackItem builds one audit-log object with the given actor, project
// and payload (nil: no payload key), in the key order of item.
func (g *generator) attackItem(typ string, eff int64, actor *Actor, project *Project, payload obj) []byte {
	var b bytes.Buffer
	b.WriteString(`{"object":"organization.audit_log","id":`)
	writeJSON(&b, "audit_log-"+randAlnum(g.r, 24))
	b.WriteString(`,"type":`)
	writeJSON(&b, typ)
	b.WriteString(`,"effective_at":`)
	writeJSON(&b, eff)
	if project != nil {
		b.WriteString(`,"project":`)
		writeJSON(&b, project)
	}
	if actor != nil {
		b.WriteString(`,"actor":`)
		writeJSON(&b, actor)
	}
	if payload != nil {
		b.WriteString(`,`)
		writeJSON(&b, typ)
		b.WriteString(`:`)
		writeJSON(&b, payload)
	}
	b.WriteString(`}`)
	g.inv.apply(b.Bytes())
	return b.Bytes()
}

// sessionFrom is a session actor of user u at address ip of network n.
func (g *generator) sessionFrom(u orgUser, n int, ip netip.Addr) *Actor {
	c, nw := clients[g.r.IntN(len(clients))], networks[n]
	return &Actor{Type: "session", Session: &Session{
		User:      User{ID: u.id, Email: u.email},
		IPAddress: ip.String(),
		UserAgent: c.ua, JA3: c.ja3, JA4: c.ja4,
		IPAddressDetails: &IPAddressDetails{
			Country: nw.Country, City: nw.City, Region: nw.Region, RegionCode: nw.RegionCode,
			ASN: strconv.FormatUint(uint64(nw.ASN), 10), Latitude: nw.Latitude(), Longitude: nw.Longitude(),
		},
	}}
}

// usualSession is u's session from one of its usual addresses.
func (g *generator) usualSession(u orgUser) *Actor {
	s := u.sessions[g.r.IntN(len(u.sessions))]
	return g.sessionFrom(u, s.network, s.ip)
}

// farNetwork returns a network in another country than all of u's usual
// sessions, at least 3000 km from the first.
func (g *generator) farNetwork(u orgUser) int {
	home := networks[u.sessions[0].network]
	countries := map[string]bool{}
	for _, s := range u.sessions {
		countries[networks[s.network].Country] = true
	}
	var far []int
	for i, n := range networks {
		if !countries[n.Country] && distanceKm(home.Lat, home.Lon, n.Lat, n.Lon) > 3000 {
			far = append(far, i)
		}
	}
	return far[g.r.IntN(len(far))]
}

// distanceKm is the great-circle distance between two points in degrees.
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const earthRadiusKm = 6371
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	dLat, dLon := rad(lat2-lat1), rad(lon2-lon1)
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(lat1))*math.Cos(rad(lat2))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(a))
}

func (g *generator) user() orgUser { return g.org.users[g.r.IntN(len(g.org.users))] }

// admin is an owner's usual session: who performs administrative attacks.
func (g *generator) admin() *Actor { return g.usualSession(g.org.users[g.r.IntN(2)]) }

// times returns n effective_at values spread evenly over the 90 s before
// end, the last at end.
func times(n int, end int64) []int64 {
	out := make([]int64, n)
	step := int64(attackSpread/time.Second) / int64(max(n-1, 1))
	for i := range out {
		out[i] = end - int64(n-1-i)*step
	}
	return out
}

func (g *generator) failedLogins(u orgUser, ts []int64, from func(i int) (int, netip.Addr), code, message string) [][]byte {
	var out [][]byte
	for i, t := range ts {
		n, ip := from(i)
		out = append(out, g.attackItem("login.failed", t, g.sessionFrom(u, n, ip), nil, obj{"error_code": code, "error_message": message}))
	}
	return out
}

// credentialStuffing: 8 failed logins to one user from 8 networks.
func (g *generator) credentialStuffing(end int64) [][]byte {
	order := g.r.Perm(len(networks))
	return g.failedLogins(g.user(), times(8, end), func(i int) (int, netip.Addr) {
		return order[i], randAddr(g.r, order[i])
	}, "invalid_credentials", "Wrong email or password.")
}

// passwordSpraying: one hosting address fails for 6 users.
func (g *generator) passwordSpraying(end int64) [][]byte {
	n := g.r.IntN(len(networks))
	ip := randAddr(g.r, n)
	victims := g.r.Perm(len(g.org.users))
	var out [][]byte
	for i, t := range times(6, end) {
		u := g.org.users[victims[i]]
		out = append(out, g.attackItem("login.failed", t, g.sessionFrom(u, n, ip), nil, obj{"error_code": "invalid_credentials", "error_message": "Wrong email or password."}))
	}
	return out
}

// bruteForceSuccess: 6 failures then a success, from one address.
func (g *generator) bruteForceSuccess(end int64) [][]byte {
	u, n := g.user(), g.r.IntN(len(networks))
	ip := randAddr(g.r, n)
	ts := times(7, end)
	out := g.failedLogins(u, ts[:6], func(int) (int, netip.Addr) { return n, ip }, "invalid_credentials", "Wrong email or password.")
	return append(out, g.attackItem("login.succeeded", ts[6], g.sessionFrom(u, n, ip), nil, nil))
}

// mfaFailures: 4 wrong verification codes after a correct password.
func (g *generator) mfaFailures(end int64) [][]byte {
	u := g.user()
	s := u.sessions[0]
	return g.failedLogins(u, times(4, end), func(int) (int, netip.Addr) { return s.network, s.ip }, "mfa_failed", "The verification code is incorrect.")
}

// privilegedRole: a reader is made organization owner.
func (g *generator) privilegedRole(end int64) [][]byte {
	target := g.org.users[2+g.r.IntN(len(g.org.users)-2)]
	return [][]byte{g.attackItem("user.updated", end, g.admin(), nil, obj{"id": target.id, "changes_requested": obj{"role": "owner"}})}
}

// elevatedKey: a key created with scope all, another updated to
// api_keys:write.
func (g *generator) elevatedKey(end int64) [][]byte {
	p := g.org.projects[g.r.IntN(len(g.org.projects))]
	project := &Project{ID: p.id, Name: p.name}
	ts := times(2, end)
	return [][]byte{
		g.attackItem("api_key.created", ts[0], g.admin(), project, obj{"id": "key_" + randAlnum(g.r, 16), "data": obj{"scopes": []string{"all"}}}),
		g.attackItem("api_key.updated", ts[1], g.admin(), project, obj{"id": g.keyID(), "changes_requested": obj{"scopes": []string{"api_keys:write", "models:write"}}}),
	}
}

// adminKey: a new admin API key (tenant-scoped).
func (g *generator) adminKey(end int64) [][]byte {
	return [][]byte{g.attackItem("tenant.admin_api_key.created", end, g.admin(), nil,
		obj{"id": "key_" + randAlnum(g.r, 16), "tenant_id": g.org.id, "data": obj{"name": "automation"}})}
}

// allowlistRemoved: every allowlist deactivated, one deleted.
func (g *generator) allowlistRemoved(end int64) [][]byte {
	var configs []obj
	for _, a := range g.org.allowlists {
		configs = append(configs, obj{"id": a.id, "name": a.name})
	}
	a := g.org.allowlists[0]
	ts := times(2, end)
	return [][]byte{
		g.attackItem("ip_allowlist.config.deactivated", ts[0], g.admin(), nil, obj{"configs": configs}),
		g.attackItem("ip_allowlist.deleted", ts[1], g.admin(), nil, obj{"id": a.id, "name": a.name, "allowed_ips": g.allowedIPs()}),
	}
}

// scimDisabled: SCIM provisioning switched off.
func (g *generator) scimDisabled(end int64) [][]byte {
	return [][]byte{g.attackItem("scim.disabled", end, g.admin(), nil, obj{"id": g.org.id})}
}

// loggingDisabled: API call logging switched off.
func (g *generator) loggingDisabled(end int64) [][]byte {
	return [][]byte{g.attackItem("organization.updated", end, g.admin(), nil, obj{"id": g.org.id, "changes_requested": obj{"api_call_logging": "disabled"}})}
}

// impossibleTravel: a login from home, then one a continent away a minute
// later.
func (g *generator) impossibleTravel(end int64) [][]byte {
	u := g.user()
	far := g.farNetwork(u)
	ts := times(2, end)
	return [][]byte{
		g.attackItem("login.succeeded", ts[0], g.usualSession(u), nil, nil),
		g.attackItem("login.succeeded", ts[1], g.sessionFrom(u, far, randAddr(g.r, far)), nil, nil),
	}
}

// massDeletion: one owner deletes 2 users, 2 keys, a project and a service
// account.
func (g *generator) massDeletion(end int64) [][]byte {
	actor := g.admin()
	ts := times(6, end)
	items := []struct {
		typ string
		id  string
	}{
		{"user.deleted", g.org.users[2+g.r.IntN(5)].id},
		{"user.deleted", g.org.users[7+g.r.IntN(5)].id},
		{"api_key.deleted", g.org.keys[g.r.IntN(6)].id},
		{"api_key.deleted", g.org.keys[6+g.r.IntN(6)].id},
		{"project.deleted", g.org.projects[1+g.r.IntN(len(g.org.projects)-1)].id},
		{"service_account.deleted", g.saID()},
	}
	var out [][]byte
	for i, it := range items {
		out = append(out, g.attackItem(it.typ, ts[i], actor, nil, obj{"id": it.id}))
	}
	return out
}

// creationBurst: one session creates 2 keys and 2 service accounts.
func (g *generator) creationBurst(end int64) [][]byte {
	actor := g.usualSession(g.user())
	p := g.org.projects[g.r.IntN(len(g.org.projects))]
	project := &Project{ID: p.id, Name: p.name}
	var out [][]byte
	for i, t := range times(4, end) {
		if i%2 == 0 {
			out = append(out, g.attackItem("api_key.created", t, actor, project, obj{"id": "key_" + randAlnum(g.r, 16), "data": obj{"scopes": []string{"api.model.request"}}}))
		} else {
			out = append(out, g.attackItem("service_account.created", t, actor, project, obj{"id": "svc_acct_" + randAlnum(g.r, 24), "data": obj{"role": "member"}}))
		}
	}
	return out
}

// externalDomains are mailbox providers no simulated member uses.
var externalDomains = []string{"gmail.com", "proton.me", "outlook.com"}

// externalInvite: an invitation to a personal mailbox.
func (g *generator) externalInvite(end int64) [][]byte {
	email := g.pick(firstNames) + "." + g.pick(lastNames) + randHex(g.r, 3) + "@" + g.pick(externalDomains)
	return [][]byte{g.attackItem("invite.sent", end, g.admin(), nil, obj{"id": "invite-" + randAlnum(g.r, 24), "data": obj{"email": email, "role": "member"}})}
}

// certificateSwap: a new mTLS certificate uploaded and activated.
func (g *generator) certificateSwap(end int64) [][]byte {
	id, name := "cert_"+randAlnum(g.r, 24), "mtls-client-"+randHex(g.r, 4)
	ts := times(2, end)
	return [][]byte{
		g.attackItem("certificate.created", ts[0], g.admin(), nil, obj{"id": id, "name": name}),
		g.attackItem("certificates.activated", ts[1], g.admin(), nil, obj{"certificates": []obj{{"id": id, "name": name}}}),
	}
}

// rateLimitRaise: a limit set to 500 requests a minute, then to 50,000.
func (g *generator) rateLimitRaise(end int64) [][]byte {
	id := "rl-" + g.pick(models) + "-" + randHex(g.r, 4)
	ts := times(2, end)
	return [][]byte{
		g.attackItem("rate_limit.updated", ts[0], g.admin(), nil, obj{"id": id, "changes_requested": obj{"max_requests_per_1_minute": 500}}),
		g.attackItem("rate_limit.updated", ts[1], g.admin(), nil, obj{"id": id, "changes_requested": obj{"max_requests_per_1_minute": 50000}}),
	}
}

// deletedUserKey: a user is deleted, then their API key is used.
func (g *generator) deletedUserKey(end int64) [][]byte {
	k := g.org.keys[2+g.r.IntN(10)] // a user key of a reader
	u := g.org.users[k.owner]
	p := g.org.projects[k.project]
	ts := times(2, end)
	return [][]byte{
		g.attackItem("user.deleted", ts[0], g.admin(), nil, obj{"id": u.id}),
		g.attackItem("project.updated", ts[1], &Actor{Type: "api_key", APIKey: &APIKey{ID: k.id, Type: "user", User: &User{ID: u.id, Email: u.email}}},
			&Project{ID: p.id, Name: p.name}, obj{"id": p.id, "changes_requested": obj{"title": p.name + " (archive)"}}),
	}
}

// workloadTrust: a new workload identity provider.
func (g *generator) workloadTrust(end int64) [][]byte {
	return [][]byte{g.attackItem("workload_identity_provider.created", end, g.admin(), nil,
		obj{"id": "wip_" + randAlnum(g.r, 24), "data": obj{"name": "ci", "issuer": "https://token.actions.example.net", "audience": "https://api.openai.com"}})}
}

// RunAttacks generates the scenarios kinds (see ParseAttackKinds) now and
// then every interval until ctx is done or the simulator is closed; with a
// zero interval it generates them once and returns. Errors (an unknown
// kind) are returned at once.
func (s *Simulator) RunAttacks(ctx context.Context, kinds []string, interval time.Duration) error {
	if len(kinds) == 0 {
		return nil
	}
	list := strings.Join(kinds, ",")
	if _, err := s.Attack(list, time.Time{}); err != nil {
		return err
	}
	if interval <= 0 {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return nil
		case <-t.C:
			if _, err := s.Attack(list, time.Time{}); err != nil {
				return err
			}
		}
	}
}
