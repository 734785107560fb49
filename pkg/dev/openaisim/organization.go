package openaisim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// The simulated organization: who acts, from where and with which keys.
// Everything is drawn from the generator's seeded source, so one seed always
// yields the same organization.

type orgUser struct {
	id, email, name, role string
	sessions              []orgSession
}

type orgSession struct {
	ip      netip.Addr
	network int // index into networks
	client  int // index into clients
}

type orgProject struct{ id, name string }

type orgServiceAccount struct {
	id, name string
	project  int
}

type orgKey struct {
	id, typ string // typ: "user" or "service_account"
	owner   int    // index into users or serviceAccounts
	project int
}

type organization struct {
	id, name, domain string
	workspaceID      string
	projects         []orgProject
	users            []orgUser
	serviceAccounts  []orgServiceAccount
	keys             []orgKey
	groups           []string
	roles            []string
	certificates     []namedID
	allowlists       []namedID
	providers        []string
	connectors       []namedID
}

type namedID struct{ id, name string }

// client is a browser with its TLS fingerprints; live data repeats the same
// ja3/ja4 for the same client stack.
type client struct{ ua, ja3, ja4 string }

var clients = []client{
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36", "cd08e31494f9531f560d64c695473da9", "t13d1516h2_8daaf6152771_d8a2da3f94cd"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36 Edg/139.0.0.0", "773906b0efdefa24a7f2b8eb6985bf37", "t13d1516h2_8daaf6152771_02713d6af862"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:142.0) Gecko/20100101 Firefox/142.0", "b5001237acdf006056b409cc433726b0", "t13d1715h2_5b57614c22b0_3d5424432f57"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Safari/605.1.15", "773906b0efdefa24a7f2b8eb6985bf37", "t13d2014h2_a09f3c656075_14788d8d241b"},
	{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36", "353a0320fbb4ca45a09ce7a2cbb7ccc4", "t13d691100_3b5074b1b5d0_ba5c8e4e0cbd"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.6 Mobile/15E148 Safari/604.1", "773906b0efdefa24a7f2b8eb6985bf37", "t13d2014h2_a09f3c656075_e42f34c56612"},
}

var (
	orgDomains   = []string{"acme-robotics.com", "northwind.io", "globex.ai", "initech.dev", "umbrella-labs.org"}
	firstNames   = []string{"ada", "grace", "alan", "linus", "margaret", "dennis", "barbara", "ken", "radia", "guido", "frances", "edsger", "hedy", "tim", "sophie", "yukihiro"}
	lastNames    = []string{"lovelace", "hopper", "turing", "torvalds", "hamilton", "ritchie", "liskov", "thompson", "perlman", "rossum", "allen", "dijkstra", "lamarr", "berners-lee", "wilson", "matsumoto"}
	projectNames = []string{"Customer Support Bot", "Search Ranking", "Data Labeling", "Internal Tools", "Marketing Copy", "Fraud Signals"}
	saNames      = []string{"ci-deployer", "batch-runner", "eval-harness", "support-bot"}
	groupNames   = []string{"Engineering", "Data Science", "Security", "Finance", "Support"}
	connectors   = []string{"Google Drive", "SharePoint", "GitHub", "Slack", "Confluence"}
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randAlnum(r *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n)
	for range n {
		b.WriteByte(alnum[r.IntN(len(alnum))])
	}
	return b.String()
}

func randHex(r *rand.Rand, n int) string {
	const hexdig = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = hexdig[r.IntN(16)]
	}
	return string(b)
}

// randAddr draws a host address from network n: IPv4 hosts .1-.254, IPv6
// a random interface part below the /48.
func randAddr(r *rand.Rand, n int) netip.Addr {
	p := networks[n].CIDR
	if p.Addr().Is4() {
		b := p.Masked().Addr().As4()
		b[3] = byte(1 + r.IntN(254))
		return netip.AddrFrom4(b)
	}
	b := p.Masked().Addr().As16()
	for i := p.Bits() / 8; i < 16; i++ {
		b[i] = byte(r.IntN(256))
	}
	b[15] |= 1 // never the subnet-router anycast address
	return netip.AddrFrom16(b)
}

// newOrganization draws an organization from r. The draws happen in a fixed
// order (identity, projects, users, service accounts, keys, then the access
// objects), so one source state always yields the same organization.
func newOrganization(r *rand.Rand) organization {
	o := organization{
		id:          "org-" + randAlnum(r, 24),
		domain:      orgDomains[r.IntN(len(orgDomains))],
		workspaceID: fmt.Sprintf("%s-%s-%s-%s-%s", randHex(r, 8), randHex(r, 4), randHex(r, 4), randHex(r, 4), randHex(r, 12)),
	}
	o.name = strings.Split(o.domain, ".")[0]
	o.projects = newProjects(r)
	o.users = newUsers(r, o.domain)
	o.serviceAccounts = newServiceAccounts(r, len(o.projects))
	o.keys = newKeys(r, o.users, o.serviceAccounts, len(o.projects))
	o.addAccessObjects(r)
	return o
}

// newProjects returns the default project followed by one per projectNames.
func newProjects(r *rand.Rand) []orgProject {
	projects := []orgProject{{id: "proj_" + randAlnum(r, 24), name: "Default project"}}
	for _, name := range projectNames {
		projects = append(projects, orgProject{id: "proj_" + randAlnum(r, 24), name: name})
	}
	return projects
}

// newUsers returns 12 users with addresses in domain; the first two are
// owners, the others readers.
func newUsers(r *rand.Rand, domain string) []orgUser {
	var users []orgUser
	for i := range 12 {
		first, last := firstNames[(i+r.IntN(4))%len(firstNames)], lastNames[i%len(lastNames)]
		u := orgUser{
			id:    "user-" + randAlnum(r, 24),
			name:  first + " " + last,
			email: first + "." + last + "@" + domain,
			role:  "reader",
		}
		if i < 2 {
			u.role = "owner"
		}
		u.sessions = newSessions(r)
		users = append(users, u)
	}
	return users
}

// newSessions returns 2 or 3 sessions from one home place: mostly its IPv4
// block, sometimes its IPv6 block, rarely any network (travel or a VPN).
func newSessions(r *rand.Rand) []orgSession {
	var sessions []orgSession
	home := r.IntN(len(places))
	for range 2 + r.IntN(2) {
		n := 2 * home
		if r.Float64() < 0.35 {
			n++ // IPv6 block of the same place
		}
		if r.Float64() < 0.03 {
			n = r.IntN(len(networks)) // travelling or on a VPN
		}
		sessions = append(sessions, orgSession{ip: randAddr(r, n), network: n, client: r.IntN(len(clients))})
	}
	return sessions
}

// newServiceAccounts returns one service account per saNames, each in one of
// the projects 1..projects-1 (never the default project).
func newServiceAccounts(r *rand.Rand, projects int) []orgServiceAccount {
	var accounts []orgServiceAccount
	for _, name := range saNames {
		accounts = append(accounts, orgServiceAccount{
			id: "svc_acct_" + randAlnum(r, 24), name: name, project: 1 + r.IntN(projects-1),
		})
	}
	return accounts
}

// newKeys returns one key per user, in a random project, then one per
// service account, in its project.
func newKeys(r *rand.Rand, users []orgUser, accounts []orgServiceAccount, projects int) []orgKey {
	var keys []orgKey
	for i := range users {
		keys = append(keys, orgKey{id: "key_" + randAlnum(r, 16), typ: "user", owner: i, project: r.IntN(projects)})
	}
	for i, sa := range accounts {
		keys = append(keys, orgKey{id: "key_" + randAlnum(r, 16), typ: "service_account", owner: i, project: sa.project})
	}
	return keys
}

// addAccessObjects draws the groups, roles, certificates, IP allowlists,
// workload identity providers and connectors.
func (o *organization) addAccessObjects(r *rand.Rand) {
	for range groupNames {
		o.groups = append(o.groups, "group_"+randAlnum(r, 24))
	}
	for range 4 {
		o.roles = append(o.roles, "role_"+randAlnum(r, 24))
	}
	for i := range 3 {
		o.certificates = append(o.certificates, namedID{"cert_" + randAlnum(r, 24), fmt.Sprintf("mtls-client-%d", i+1)})
		o.allowlists = append(o.allowlists, namedID{"ipal_" + randAlnum(r, 24), []string{"office", "vpn", "ci"}[i]})
		o.providers = append(o.providers, "wip_"+randAlnum(r, 24))
	}
	for _, name := range connectors {
		o.connectors = append(o.connectors, namedID{"connector_" + randHex(r, 32), name})
	}
}
