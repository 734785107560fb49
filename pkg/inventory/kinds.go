package inventory

import "slices"

// Kind names one kind of inventory object: the kind column of the
// inventory tables and the middle part of a record's key.
type Kind string

// The object kinds, one per listing endpoint (Endpoints), and KindSnapshot
// for the record that closes a snapshot.
const (
	KindAdminAPIKey           Kind = "admin_api_key"
	KindProject               Kind = "project"
	KindProjectAPIKey         Kind = "project_api_key"
	KindProjectServiceAccount Kind = "project_service_account"
	KindProjectUser           Kind = "project_user"
	KindProjectRateLimit      Kind = "project_rate_limit"
	KindProjectSpendLimit     Kind = "project_spend_limit"
	KindProjectDataRetention  Kind = "project_data_retention"
	KindUser                  Kind = "user"
	KindInvite                Kind = "invite"
	KindGroup                 Kind = "group"
	KindRole                  Kind = "role"
	KindRoleAssignment        Kind = "role_assignment"
	KindCertificate           Kind = "certificate"
	KindSpendLimit            Kind = "spend_limit"
	KindDataRetention         Kind = "data_retention"
	// KindSnapshot is the record closing a snapshot (Op OpSnapshot).
	KindSnapshot Kind = "snapshot"
)

// Scope says over what an endpoint's path is repeated.
type Scope string

// The scopes.
const (
	// ScopeOrganization: one listing per organization.
	ScopeOrganization Scope = "organization"
	// ScopeProject: one listing per active (not archived) project;
	// {project_id} in the path.
	ScopeProject Scope = "project"
	// ScopeUser: one listing per organization user; {user_id}.
	ScopeUser Scope = "user"
	// ScopeGroup: one listing per group; {group_id}.
	ScopeGroup Scope = "group"
)

// Paging is how an endpoint pages (the openai-go SDK's page types).
type Paging string

// The paging styles.
const (
	// PagingLastID: {"data", "first_id", "last_id", "has_more"}; the next
	// page is after=<last_id> (ConversationCursorPage).
	PagingLastID Paging = "last_id"
	// PagingItemID: {"data", "has_more"}; the next page is after=<id of
	// the last item> (CursorPage).
	PagingItemID Paging = "item_id"
	// PagingNext: {"data", "has_more", "next"}; the next page is
	// after=<next> (NextCursorPage).
	PagingNext Paging = "next"
	// PagingNone: a single object, not a list.
	PagingNone Paging = "none"
)

// Endpoint is one listing of the Admin API that yields objects of Kind.
type Endpoint struct {
	Kind Kind
	// Path below the API base (…/v1), with {project_id}, {user_id} or
	// {group_id} for the scoped ones.
	Path  string
	Scope Scope
	// Query is added to every request (the page size, include_archived).
	Query  string
	Paging Paging
	// Volatile are the top-level fields left out of the object's hash:
	// they move with use, not with a change anyone makes (and no audit
	// event reports them), so a snapshot does not write a change record
	// for them; the daily baseline carries their current value.
	Volatile []string
	// Audited says whether the audit log reports changes to objects of
	// this kind, i.e. whether the audit_gap rule can judge them.
	Audited bool
}

// Endpoints lists every endpoint a snapshot reads, in the order a
// collector lists them (projects, users and groups before the endpoints
// scoped to them). From openai/openai-openapi (spec 2.3.0) and the
// openai-go SDK; docs/inventory.md has the fields each kind is used for.
var Endpoints = []Endpoint{
	{Kind: KindProject, Path: "/organization/projects", Scope: ScopeOrganization, Query: "limit=100&include_archived=true", Paging: PagingLastID, Audited: true},
	{Kind: KindUser, Path: "/organization/users", Scope: ScopeOrganization, Query: "limit=100", Paging: PagingLastID, Volatile: []string{"api_key_last_used_at"}, Audited: true},
	{Kind: KindGroup, Path: "/organization/groups", Scope: ScopeOrganization, Query: "limit=1000", Paging: PagingNext, Audited: true},
	{Kind: KindAdminAPIKey, Path: "/organization/admin_api_keys", Scope: ScopeOrganization, Query: "limit=100", Paging: PagingItemID, Volatile: []string{"last_used_at"}, Audited: true},
	{Kind: KindInvite, Path: "/organization/invites", Scope: ScopeOrganization, Query: "limit=100", Paging: PagingLastID, Audited: true},
	{Kind: KindRole, Path: "/organization/roles", Scope: ScopeOrganization, Query: "limit=1000", Paging: PagingNext, Audited: true},
	{Kind: KindCertificate, Path: "/organization/certificates", Scope: ScopeOrganization, Query: "limit=100", Paging: PagingLastID, Audited: true},
	{Kind: KindSpendLimit, Path: "/organization/spend_limit", Scope: ScopeOrganization, Paging: PagingNone},
	{Kind: KindDataRetention, Path: "/organization/data_retention", Scope: ScopeOrganization, Paging: PagingNone},
	{Kind: KindRoleAssignment, Path: "/organization/users/{user_id}/roles", Scope: ScopeUser, Query: "limit=1000", Paging: PagingNext, Audited: true},
	{Kind: KindRoleAssignment, Path: "/organization/groups/{group_id}/roles", Scope: ScopeGroup, Query: "limit=1000", Paging: PagingNext, Audited: true},
	{Kind: KindProjectAPIKey, Path: "/organization/projects/{project_id}/api_keys", Scope: ScopeProject, Query: "limit=100", Paging: PagingLastID, Volatile: []string{"last_used_at"}, Audited: true},
	{Kind: KindProjectServiceAccount, Path: "/organization/projects/{project_id}/service_accounts", Scope: ScopeProject, Query: "limit=100", Paging: PagingLastID, Audited: true},
	{Kind: KindProjectUser, Path: "/organization/projects/{project_id}/users", Scope: ScopeProject, Query: "limit=100", Paging: PagingLastID},
	{Kind: KindProjectRateLimit, Path: "/organization/projects/{project_id}/rate_limits", Scope: ScopeProject, Query: "limit=100", Paging: PagingLastID, Audited: true},
	{Kind: KindProjectSpendLimit, Path: "/organization/projects/{project_id}/spend_limit", Scope: ScopeProject, Paging: PagingNone},
	{Kind: KindProjectDataRetention, Path: "/organization/projects/{project_id}/data_retention", Scope: ScopeProject, Paging: PagingNone},
}

// Kinds returns every object kind of Endpoints once, in listing order.
func Kinds() []Kind {
	var out []Kind
	for _, e := range Endpoints {
		if !slices.Contains(out, e.Kind) {
			out = append(out, e.Kind)
		}
	}
	return out
}

// EndpointsOf returns the endpoints of kind k.
func EndpointsOf(k Kind) []Endpoint {
	var out []Endpoint
	for _, e := range Endpoints {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// Volatile returns the fields of kind k left out of its hash.
func Volatile(k Kind) []string {
	for _, e := range Endpoints {
		if e.Kind == k {
			return e.Volatile
		}
	}
	return nil
}

// RequestsPerSnapshot is the number of API requests one snapshot makes
// when every listing fits in one page: one per organization-scoped
// endpoint, one per active project for each project-scoped one, one per
// user and one per group for the role assignments. A listing longer than
// a page costs one request per page (100 objects, 1,000 for groups, roles
// and role assignments).
func RequestsPerSnapshot(activeProjects, users, groups int) int {
	n := 0
	for _, e := range Endpoints {
		switch e.Scope {
		case ScopeOrganization:
			n++
		case ScopeProject:
			n += activeProjects
		case ScopeUser:
			n += users
		case ScopeGroup:
			n += groups
		}
	}
	return n
}
