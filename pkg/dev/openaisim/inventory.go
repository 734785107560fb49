package openaisim

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// The inventory of one simulated organization: the objects the Admin API's
// listing endpoints return (docs/inventory.md has the list). It starts from
// the organization the generator draws and then follows the audit log:
// every audit event the simulator makes (generated, staged by an attack,
// added with AddRaw, or dropped on purpose) is applied to it, so a key
// created in the audit log is listed until an event deletes it, a user
// deleted in the log is no longer listed, and so on. An event that is
// dropped (DropAudit, Config.DropRate) changes the inventory like any
// other but is never served: the audit log misses a change, which the
// audit_gap detection is built to notice.
//
// The generator owns the draws (under Simulator.genMu); mu guards the
// objects, which the HTTP handlers read concurrently.

// inventory holds one organization's objects, each kind by id.
type inventory struct {
	mu sync.RWMutex

	adminKeys     map[string]*invAdminKey
	projects      map[string]*invProject
	projectKeys   map[string]*invProjectKey
	serviceAccts  map[string]*invServiceAccount
	projectUsers  map[string]map[string]*invProjectUser // project id → user id → membership
	rateLimits    map[string]map[string]*invRateLimit   // project id → rate limit id → limit
	users         map[string]*invUser
	invites       map[string]*invInvite
	groups        map[string]*invGroup
	roles         map[string]*invRole
	assignments   map[string]map[string]int64 // principal id → role id → assigned at
	groupMembers  map[string]bool             // principal ids that are groups
	certificates  map[string]*invCertificate
	spendLimit    invSpendLimit
	dataRetention invDataRetention
	// founders are the users that are never deleted or demoted (the
	// organization's first two owners: attack scenarios act as them).
	founders map[string]bool
	// defaultID is the default project, never archived or deleted.
	defaultID string
}

type invAdminKey struct {
	Object        string      `json:"object"`
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	RedactedValue string      `json:"redacted_value"`
	CreatedAt     int64       `json:"created_at"`
	LastUsedAt    *int64      `json:"last_used_at"`
	ExpiresAt     *int64      `json:"expires_at"`
	Owner         invKeyOwner `json:"owner"`
}

type invKeyOwner struct {
	Type      string `json:"type"`
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

type invProject struct {
	Object     string `json:"object"`
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	ArchivedAt *int64 `json:"archived_at"`
	Status     string `json:"status"`
}

type invProjectKey struct {
	Object             string          `json:"object"`
	ID                 string          `json:"id"`
	Name               string          `json:"name"`
	RedactedValue      string          `json:"redacted_value"`
	CreatedAt          int64           `json:"created_at"`
	LastUsedAt         int64           `json:"last_used_at"`
	ExpiresAt          *int64          `json:"expires_at"`
	Owner              invProjectOwner `json:"owner"`
	OwnerProjectAccess string          `json:"owner_project_access"`
	project            string
}

type invProjectOwner struct {
	Type           string               `json:"type"`
	User           *invOwnerUser        `json:"user,omitempty"`
	ServiceAccount *invOwnerServiceAcct `json:"service_account,omitempty"`
}

type invOwnerUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

type invOwnerServiceAcct struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

type invServiceAccount struct {
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
	project   string
}

type invProjectUser struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Role    string `json:"role"`
	AddedAt int64  `json:"added_at"`
}

type invRateLimit struct {
	Object                  string `json:"object"`
	ID                      string `json:"id"`
	Model                   string `json:"model"`
	MaxRequestsPer1Minute   int64  `json:"max_requests_per_1_minute"`
	MaxTokensPer1Minute     int64  `json:"max_tokens_per_1_minute"`
	Batch1DayMaxInputTokens int64  `json:"batch_1_day_max_input_tokens,omitempty"`
}

type invUser struct {
	Object           string `json:"object"`
	ID               string `json:"id"`
	Name             string `json:"name"`
	Email            string `json:"email"`
	Role             string `json:"role"`
	AddedAt          int64  `json:"added_at"`
	APIKeyLastUsedAt *int64 `json:"api_key_last_used_at"`
}

type invInvite struct {
	Object     string   `json:"object"`
	ID         string   `json:"id"`
	Email      string   `json:"email"`
	Role       string   `json:"role"`
	Status     string   `json:"status"`
	CreatedAt  int64    `json:"created_at"`
	ExpiresAt  int64    `json:"expires_at"`
	AcceptedAt *int64   `json:"accepted_at"`
	Projects   []string `json:"-"`
}

type invGroup struct {
	Object        string `json:"object"`
	ID            string `json:"id"`
	Name          string `json:"name"`
	CreatedAt     int64  `json:"created_at"`
	GroupType     string `json:"group_type"`
	IsSCIMManaged bool   `json:"is_scim_managed"`
}

type invRole struct {
	Object         string   `json:"object"`
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Permissions    []string `json:"permissions"`
	PredefinedRole bool     `json:"predefined_role"`
	ResourceType   string   `json:"resource_type"`
}

type invCertificate struct {
	Object    string         `json:"object"`
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Active    bool           `json:"active"`
	CreatedAt int64          `json:"created_at"`
	Details   invCertDetails `json:"certificate_details"`
}

type invCertDetails struct {
	ValidAt   int64 `json:"valid_at"`
	ExpiresAt int64 `json:"expires_at"`
}

type invSpendLimit struct {
	Object          string            `json:"object"`
	ThresholdAmount int64             `json:"threshold_amount"`
	Currency        string            `json:"currency"`
	Interval        string            `json:"interval"`
	Enforcement     map[string]string `json:"enforcement"`
}

type invDataRetention struct {
	Object string `json:"object"`
	Type   string `json:"type"`
}

// certificateLifetime is how long a certificate uploaded through the audit
// log stays valid.
const certificateLifetime = 365 * 24 * time.Hour

// inviteLifetime is how long an invitation stays acceptable.
const inviteLifetime = 30 * 24 * time.Hour

// newInventory builds the organization's objects as they stand at start
// (the oldest backlog event's time), with dates before it drawn from r.
// Besides the organization's users, projects, service accounts and keys it
// holds what posture detections look for in a real organization: two
// dormant project keys nobody uses (one never used), an admin key without
// an expiry, a pending invitation and a certificate close to expiry.
func newInventory(o *organization, r *rand.Rand, start time.Time) *inventory {
	day := int64(24 * time.Hour / time.Second)
	t0 := start.Unix()
	ago := func(minDays, maxDays int) int64 {
		return t0 - int64(minDays)*day - r.Int64N(int64(maxDays-minDays+1)*day)
	}
	inv := &inventory{
		adminKeys: map[string]*invAdminKey{}, projects: map[string]*invProject{}, projectKeys: map[string]*invProjectKey{},
		serviceAccts: map[string]*invServiceAccount{}, projectUsers: map[string]map[string]*invProjectUser{},
		rateLimits: map[string]map[string]*invRateLimit{}, users: map[string]*invUser{}, invites: map[string]*invInvite{},
		groups: map[string]*invGroup{}, roles: map[string]*invRole{}, assignments: map[string]map[string]int64{},
		groupMembers: map[string]bool{}, certificates: map[string]*invCertificate{}, founders: map[string]bool{},
		spendLimit:    invSpendLimit{Object: "organization.spend_limit", ThresholdAmount: 500000, Currency: "usd", Interval: "month", Enforcement: map[string]string{"status": "enabled"}},
		dataRetention: invDataRetention{Object: "organization.data_retention", Type: "zero_data_retention"},
	}
	inv.defaultID = o.projects[0].id
	for i, p := range o.projects {
		inv.addProject(p.id, p.name, ago(200, 400))
		if i%2 == 0 { // half the projects have configured rate limits
			inv.setRateLimit(p.id, "rl-"+models[i%len(models)], obj{"max_requests_per_1_minute": 500 * (1 + i)})
		}
	}
	for i, u := range o.users {
		inv.addUser(u.id, u.name, u.email, u.role, ago(100, 400))
		if i < 2 {
			inv.founders[u.id] = true
		}
		inv.addProjectUser(o.projects[0].id, u.id, "member", t0)
	}
	for _, sa := range o.serviceAccounts {
		inv.addServiceAccount(sa.id, sa.name, "member", o.projects[sa.project].id, ago(60, 300))
	}
	for _, k := range o.keys {
		owner := ownerRef{typ: k.typ}
		if k.typ == "user" {
			owner.id = o.users[k.owner].id
			inv.addProjectUser(o.projects[k.project].id, owner.id, "member", t0)
		} else {
			owner.id = o.serviceAccounts[k.owner].id
		}
		inv.addProjectKey(k.id, "key-"+k.id[4:10], o.projects[k.project].id, owner, ago(30, 300))
	}
	// Dormant keys of the owners: one last used long ago, one never used.
	dormant := inv.addProjectKey("key_"+randAlnum(r, 16), "legacy-import", o.projects[1].id, ownerRef{typ: "user", id: o.users[0].id}, ago(300, 400))
	dormant.LastUsedAt = ago(120, 200)
	inv.addProjectUser(o.projects[1].id, o.users[0].id, "owner", t0)
	inv.addProjectKey("key_"+randAlnum(r, 16), "never-used", o.projects[2].id, ownerRef{typ: "user", id: o.users[1].id}, ago(100, 150))
	inv.addProjectUser(o.projects[2].id, o.users[1].id, "owner", t0)
	expiry := t0 + 60*day
	lastUsed := t0 - day
	reader := "key_" + randAlnum(r, 16)
	inv.adminKeys[reader] = &invAdminKey{Object: "organization.admin_api_key", ID: reader, Name: "audit-log-reader", RedactedValue: "sk-admin-…" + reader[len(reader)-4:],
		CreatedAt: ago(200, 300), LastUsedAt: &lastUsed, Owner: inv.adminOwner(o.users[0].id)}
	rotated := "key_" + randAlnum(r, 16)
	inv.adminKeys[rotated] = &invAdminKey{Object: "organization.admin_api_key", ID: rotated, Name: "ci-provisioning", RedactedValue: "sk-admin-…" + rotated[len(rotated)-4:],
		CreatedAt: ago(10, 20), ExpiresAt: &expiry, Owner: inv.adminOwner(o.users[1].id)}
	for i, g := range o.groups {
		inv.groups[g] = &invGroup{Object: "group", ID: g, Name: groupNames[i%len(groupNames)], CreatedAt: ago(100, 300), GroupType: "group"}
		inv.groupMembers[g] = true
	}
	for i, id := range o.roles {
		inv.roles[id] = &invRole{Object: "role", ID: id, Name: groupNames[i%len(groupNames)] + " Admin", Description: "Custom role",
			Permissions: permissions[:1+i%len(permissions)], ResourceType: "api.organization"}
	}
	inv.assign(o.users[2].id, o.roles[0], ago(10, 50))
	inv.assign(o.groups[0], o.roles[1], ago(10, 50))
	for i, c := range o.certificates {
		created := ago(200, 300)
		expires := created + int64(certificateLifetime/time.Second)
		if i == 0 {
			expires = t0 + 20*day // about to expire
		}
		inv.certificates[c.id] = &invCertificate{Object: "organization.certificate", ID: c.id, Name: c.name, Active: i < 2, CreatedAt: created,
			Details: invCertDetails{ValidAt: created, ExpiresAt: expires}}
	}
	pending := "invite-" + randAlnum(r, 24)
	inv.invites[pending] = &invInvite{Object: "organization.invite", ID: pending, Email: "contractor@" + o.domain, Role: "reader", Status: "pending",
		CreatedAt: ago(20, 25), ExpiresAt: ago(20, 20) + int64(inviteLifetime/time.Second)}
	return inv
}

// ownerRef names a key's owner: typ "user" or "service_account".
type ownerRef struct{ typ, id string }

func (inv *inventory) addProject(id, name string, at int64) {
	if _, ok := inv.projects[id]; ok {
		return
	}
	inv.projects[id] = &invProject{Object: "organization.project", ID: id, Name: name, CreatedAt: at, Status: "active"}
}

func (inv *inventory) addUser(id, name, email, role string, at int64) {
	if _, ok := inv.users[id]; ok {
		return
	}
	inv.users[id] = &invUser{Object: "organization.user", ID: id, Name: name, Email: email, Role: role, AddedAt: at}
}

func (inv *inventory) addProjectUser(project, user string, role string, at int64) {
	u, ok := inv.users[user]
	if !ok || inv.projects[project] == nil {
		return
	}
	m := inv.projectUsers[project]
	if m == nil {
		m = map[string]*invProjectUser{}
		inv.projectUsers[project] = m
	}
	if old, ok := m[user]; ok {
		if role == "owner" {
			old.Role = role
		}
		return
	}
	m[user] = &invProjectUser{Object: "organization.project.user", ID: user, Name: u.Name, Email: u.Email, Role: role, AddedAt: at}
}

func (inv *inventory) addServiceAccount(id, name, role, project string, at int64) {
	if _, ok := inv.serviceAccts[id]; ok || inv.projects[project] == nil {
		return
	}
	inv.serviceAccts[id] = &invServiceAccount{Object: "organization.project.service_account", ID: id, Name: name, Role: role, CreatedAt: at, project: project}
}

// addProjectKey adds a key (unless it exists) and returns it.
func (inv *inventory) addProjectKey(id, name, project string, owner ownerRef, at int64) *invProjectKey {
	if k, ok := inv.projectKeys[id]; ok {
		return k
	}
	k := &invProjectKey{Object: "organization.project.api_key", ID: id, Name: name, RedactedValue: "sk-proj-…" + id[max(len(id)-4, 0):],
		CreatedAt: at, OwnerProjectAccess: "active", project: project}
	switch owner.typ {
	case "service_account":
		k.Owner.Type = "service_account"
		sa := inv.serviceAccts[owner.id]
		k.Owner.ServiceAccount = &invOwnerServiceAcct{ID: owner.id, Name: owner.id, Role: "member"}
		if sa != nil {
			k.Owner.ServiceAccount.Name, k.Owner.ServiceAccount.Role, k.Owner.ServiceAccount.CreatedAt = sa.Name, sa.Role, sa.CreatedAt
		}
	default:
		k.Owner.Type = "user"
		k.Owner.User = &invOwnerUser{ID: owner.id, Role: "member"}
		if u := inv.users[owner.id]; u != nil {
			k.Owner.User.Email, k.Owner.User.Name, k.Owner.User.CreatedAt = u.Email, u.Name, u.AddedAt
		}
		if pu := inv.projectUsers[project][owner.id]; pu != nil {
			k.Owner.User.Role = pu.Role
		}
	}
	inv.projectKeys[id] = k
	return k
}

func (inv *inventory) adminOwner(user string) invKeyOwner {
	o := invKeyOwner{Type: "user", Object: "organization.user", ID: user, Role: "owner"}
	if u := inv.users[user]; u != nil {
		o.Name, o.CreatedAt = u.Name, u.AddedAt
	}
	return o
}

// setRateLimit creates or updates a project's rate limit with the fields
// of changes (the rate_limit.updated payload's changes_requested).
func (inv *inventory) setRateLimit(project, id string, changes obj) {
	if inv.projects[project] == nil {
		return
	}
	m := inv.rateLimits[project]
	if m == nil {
		m = map[string]*invRateLimit{}
		inv.rateLimits[project] = m
	}
	rl := m[id]
	if rl == nil {
		rl = &invRateLimit{Object: "project.rate_limit", ID: id, Model: strings.TrimPrefix(id, "rl-"), MaxRequestsPer1Minute: 500, MaxTokensPer1Minute: 30000}
		m[id] = rl
	}
	if v, ok := number(changes["max_requests_per_1_minute"]); ok {
		rl.MaxRequestsPer1Minute = v
	}
	if v, ok := number(changes["max_tokens_per_1_minute"]); ok {
		rl.MaxTokensPer1Minute = v
	}
	if v, ok := number(changes["batch_1_day_max_input_tokens"]); ok {
		rl.Batch1DayMaxInputTokens = v
	}
}

func (inv *inventory) assign(principal, role string, at int64) {
	if inv.roles[role] == nil || (inv.users[principal] == nil && inv.groups[principal] == nil) {
		return
	}
	m := inv.assignments[principal]
	if m == nil {
		m = map[string]int64{}
		inv.assignments[principal] = m
	}
	if _, ok := m[role]; !ok {
		m[role] = at
	}
}

// removeUser deletes a user from the organization and its projects; its
// keys stay, with owner_project_access inactive (what the posture rule on
// orphaned keys looks for).
func (inv *inventory) removeUser(id string) {
	if inv.users[id] == nil || inv.founders[id] {
		return
	}
	delete(inv.users, id)
	delete(inv.assignments, id)
	for _, m := range inv.projectUsers {
		delete(m, id)
	}
	for _, k := range inv.projectKeys {
		if k.Owner.User != nil && k.Owner.User.ID == id {
			k.OwnerProjectAccess = "inactive"
		}
	}
}

// removeServiceAccount deletes a service account; its keys stay, inactive.
func (inv *inventory) removeServiceAccount(id string) {
	if inv.serviceAccts[id] == nil {
		return
	}
	delete(inv.serviceAccts, id)
	for _, k := range inv.projectKeys {
		if k.Owner.ServiceAccount != nil && k.Owner.ServiceAccount.ID == id {
			k.OwnerProjectAccess = "inactive"
		}
	}
}

// removeProject deletes a project and everything scoped to it.
func (inv *inventory) removeProject(id string) {
	if id == inv.defaultID {
		return
	}
	delete(inv.projects, id)
	delete(inv.projectUsers, id)
	delete(inv.rateLimits, id)
	for kid, k := range inv.projectKeys {
		if k.project == id {
			delete(inv.projectKeys, kid)
		}
	}
	for sid, sa := range inv.serviceAccts {
		if sa.project == id {
			delete(inv.serviceAccts, sid)
		}
	}
}

// live lists the ids of a kind's map that pass keep, sorted (draws from
// it are then deterministic).
func live[T any](m map[string]*T, keep func(*T) bool) []string {
	var out []string
	for id, v := range m {
		if keep == nil || keep(v) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// sortedValues returns m's values ordered by id.
func sortedValues[T any](m map[string]*T) []*T {
	out := make([]*T, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// number reads a JSON number decoded into any (float64 or int).
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

func stringField(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// pickLive draws one of ids, or "" when there is none.
func pickLive(r *rand.Rand, ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[r.IntN(len(ids))]
}

func sortedMapKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func (inv *inventory) isGroup(id string) bool {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return inv.groupMembers[id]
}
