package normalize

import "strings"

// Family returns the resource family of an event type: the type without its
// final action segment, after normalizing the 2025 spelling
// checkpoint_permission.* to checkpoint.permission.*. A type without a dot
// is its own family. Examples: api_key.created → api_key,
// tenant.group.member.added → tenant.group.member, certificates.activated →
// certificates.
func Family(eventType string) string {
	t := canonicalType(eventType)
	if i := strings.LastIndexByte(t, '.'); i > 0 {
		return t[:i]
	}
	return t
}

// Action returns the final segment of an event type (created, succeeded,
// looked_up), or "" for a type without a dot.
func Action(eventType string) string {
	if i := strings.LastIndexByte(eventType, '.'); i >= 0 {
		return eventType[i+1:]
	}
	return ""
}

func canonicalType(t string) string {
	if rest, ok := strings.CutPrefix(t, "checkpoint_permission."); ok {
		return "checkpoint.permission." + rest
	}
	return t
}

// readOnlyTypes change nothing in the organization: authentication
// attempts and lookups.
var readOnlyTypes = map[string]bool{
	"login.succeeded":       true,
	"login.failed":          true,
	"logout.succeeded":      true,
	"logout.failed":         true,
	"tenant.user.looked_up": true,
	"tenant.principal_authentication_policy.resolved": true,
}

// readOnlyActions mark future types as read-only by their verb.
var readOnlyActions = map[string]bool{
	"looked_up": true,
	"viewed":    true,
	"listed":    true,
	"read":      true,
}

// ReadOnly reports whether events of the type change nothing: the listed
// types, every login.* and logout.* type, and types whose action is
// looked_up, viewed, listed or read (a resolved action is
// not enough: tenant.usage_limit.increase_request.resolved approves a
// request). Every other type, known or
// not, counts as a change.
func ReadOnly(eventType string) bool {
	if readOnlyTypes[eventType] {
		return true
	}
	if strings.HasPrefix(eventType, "login.") || strings.HasPrefix(eventType, "logout.") {
		return true
	}
	return readOnlyActions[Action(eventType)]
}

// Categories of the "category" tag.
const (
	CategoryAPIKeys        = "api_keys"
	CategoryAuthentication = "authentication"
	CategoryUsers          = "user_management"
	CategoryProjects       = "project_lifecycle"
	CategoryOrganization   = "organization_administration"
	CategoryAccessControl  = "access_control"
	CategoryOther          = "other"
)

// categoryByHead maps the first segment of a family (after tenant.) to its
// category.
var categoryByHead = map[string]string{
	"api_key":                            CategoryAPIKeys,
	"admin_api_key":                      CategoryAPIKeys,
	"project_api_key":                    CategoryAPIKeys,
	"external_key":                       CategoryAPIKeys,
	"chatgpt_access_token":               CategoryAPIKeys,
	"login":                              CategoryAuthentication,
	"logout":                             CategoryAuthentication,
	"sso":                                CategoryAuthentication,
	"sso_connection":                     CategoryAuthentication,
	"session_policy":                     CategoryAuthentication,
	"session_revocation":                 CategoryAuthentication,
	"principal_authentication_policy":    CategoryAuthentication,
	"workload_identity":                  CategoryAuthentication,
	"workload_identity_provider":         CategoryAuthentication,
	"workload_identity_provider_mapping": CategoryAuthentication,
	"microsoft_entra_mapping":            CategoryAuthentication,
	"user":                               CategoryUsers,
	"invite":                             CategoryUsers,
	"service_account":                    CategoryUsers,
	"group":                              CategoryUsers,
	"membership":                         CategoryUsers,
	"scim":                               CategoryUsers,
	"api_organization_invite":            CategoryUsers,
	"chatgpt_workspace_invite":           CategoryUsers,
	"workspace_invite_email_settings":    CategoryUsers,
	"project":                            CategoryProjects,
	"rate_limit":                         CategoryProjects,
	"usage_limit":                        CategoryProjects,
	"resource":                           CategoryProjects,
	"checkpoint":                         CategoryProjects,
	"organization":                       CategoryOrganization,
	"metadata":                           CategoryOrganization,
	"billing":                            CategoryOrganization,
	"migration":                          CategoryOrganization,
	"migration_rollout":                  CategoryOrganization,
	"domains":                            CategoryOrganization,
	"ads_account":                        CategoryOrganization,
	"trusted_access":                     CategoryOrganization,
	"ip_allowlist":                       CategoryAccessControl,
	"tunnel":                             CategoryAccessControl,
	"certificate":                        CategoryAccessControl,
	"certificates":                       CategoryAccessControl,
	"role":                               CategoryAccessControl,
	"custom_role":                        CategoryAccessControl,
	"role_assignment":                    CategoryAccessControl,
	"resource_role_assignment":           CategoryAccessControl,
	"resource_access":                    CategoryAccessControl,
	"resource_share_grant":               CategoryAccessControl,
	"policy":                             CategoryAccessControl,
	"product_access_policy":              CategoryAccessControl,
	"third_party_app_policy":             CategoryAccessControl,
}

// Category returns the coarse category of an event type, from the first
// segment of its family (ignoring a tenant. prefix); unknown heads give
// "other".
func Category(eventType string) string {
	f := strings.TrimPrefix(Family(eventType), "tenant.")
	head, _, _ := strings.Cut(f, ".")
	if c, ok := categoryByHead[head]; ok {
		return c
	}
	return CategoryOther
}
