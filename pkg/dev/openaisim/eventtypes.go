package openaisim

import "strings"

// EventType describes one value of the API's AuditLogEventType enum.
type EventType struct {
	// Name is the event type as it appears in the item's "type" field and
	// as the key of the item's payload object.
	Name string
	// Group is the family the type belongs to (the headings of OpenAI's API
	// reference).
	Group string
	// TenantScoped reports whether the type is only returned with
	// tenant_only=true.
	TenantScoped bool
}

// eventTypes lists the 147 values of AuditLogEventType (59
// organization-scoped types, 88 tenant.* types; the openai-go SDK's enum), in the order of
// OpenAI's API reference. Two non-tenant.* types (role.bound_to_resource and
// role.unbound_from_resource) are tenant-scoped too.
var eventTypes = []EventType{
	{"api_key.created", "api_key", false},
	{"api_key.updated", "api_key", false},
	{"api_key.deleted", "api_key", false},
	{"login.succeeded", "login", false},
	{"login.failed", "login", false},
	{"logout.succeeded", "login", false},
	{"logout.failed", "login", false},
	{"invite.sent", "invite", false},
	{"invite.accepted", "invite", false},
	{"invite.deleted", "invite", false},
	{"user.added", "user", false},
	{"user.updated", "user", false},
	{"user.deleted", "user", false},
	{"service_account.created", "service_account", false},
	{"service_account.updated", "service_account", false},
	{"service_account.deleted", "service_account", false},
	{"organization.updated", "organization", false},
	{"project.created", "project", false},
	{"project.updated", "project", false},
	{"project.archived", "project", false},
	{"project.deleted", "project", false},
	{"rate_limit.updated", "rate_limit", false},
	{"rate_limit.deleted", "rate_limit", false},
	{"checkpoint.permission.created", "checkpoint", false},
	{"checkpoint.permission.deleted", "checkpoint", false},
	{"certificate.created", "certificate", false},
	{"certificate.updated", "certificate", false},
	{"certificate.deleted", "certificate", false},
	{"certificates.activated", "certificate", false},
	{"certificates.deactivated", "certificate", false},
	{"external_key.registered", "external_key", false},
	{"external_key.removed", "external_key", false},
	{"group.created", "group", false},
	{"group.updated", "group", false},
	{"group.deleted", "group", false},
	{"ip_allowlist.created", "ip_allowlist", false},
	{"ip_allowlist.updated", "ip_allowlist", false},
	{"ip_allowlist.deleted", "ip_allowlist", false},
	{"ip_allowlist.config.activated", "ip_allowlist", false},
	{"ip_allowlist.config.deactivated", "ip_allowlist", false},
	{"scim.enabled", "scim", false},
	{"scim.disabled", "scim", false},
	{"role.created", "role", false},
	{"role.updated", "role", false},
	{"role.deleted", "role", false},
	{"role.assignment.created", "role_assignment", false},
	{"role.assignment.deleted", "role_assignment", false},
	{"role.bound_to_resource", "role_binding", true},
	{"role.unbound_from_resource", "role_binding", true},
	{"workload_identity_provider.created", "workload_identity", false},
	{"workload_identity_provider.updated", "workload_identity", false},
	{"workload_identity_provider.deleted", "workload_identity", false},
	{"workload_identity_provider_mapping.created", "workload_identity", false},
	{"workload_identity_provider_mapping.updated", "workload_identity", false},
	{"workload_identity_provider_mapping.deleted", "workload_identity", false},
	{"resource.deleted", "enum_only", false},
	{"tunnel.created", "enum_only", false},
	{"tunnel.updated", "enum_only", false},
	{"tunnel.deleted", "enum_only", false},

	{"tenant.metadata.updated", "tenant.metadata", true},
	{"tenant.microsoft_entra_mapping.upserted", "tenant.microsoft_entra", true},
	{"tenant.microsoft_entra_mapping.deleted", "tenant.microsoft_entra", true},
	{"tenant.workload_identity.provider.created", "tenant.workload_identity", true},
	{"tenant.workload_identity.provider.updated", "tenant.workload_identity", true},
	{"tenant.workload_identity.provider.archived", "tenant.workload_identity", true},
	{"tenant.workload_identity.mapping.created", "tenant.workload_identity", true},
	{"tenant.workload_identity.mapping.updated", "tenant.workload_identity", true},
	{"tenant.workload_identity.mapping.archived", "tenant.workload_identity", true},
	{"tenant.workload_identity.binding.created", "tenant.workload_identity", true},
	{"tenant.workload_identity.principal.provisioned", "tenant.workload_identity", true},
	{"tenant.workload_identity.access_token.issued", "tenant.workload_identity", true},
	{"tenant.admin_api_key.created", "tenant.keys", true},
	{"tenant.admin_api_key.updated", "tenant.keys", true},
	{"tenant.admin_api_key.deleted", "tenant.keys", true},
	{"tenant.project_api_key.created", "tenant.keys", true},
	{"tenant.chatgpt_access_token.revoked", "tenant.keys", true},
	{"tenant.migration.completed", "tenant.migration", true},
	{"tenant.sso.migrated", "tenant.migration", true},
	{"tenant.domains.migrated", "tenant.migration", true},
	{"tenant.migration_rollout.status.updated", "tenant.migration", true},
	{"tenant.migration_rollout.tier.updated", "tenant.migration", true},
	{"tenant.sso_connection.created", "tenant.sso", true},
	{"tenant.sso_connection.updated", "tenant.sso", true},
	{"tenant.sso_connection.deleted", "tenant.sso", true},
	{"tenant.sso_connection.setup.started", "tenant.sso", true},
	{"tenant.policy.created", "tenant.policies", true},
	{"tenant.policy.updated", "tenant.policies", true},
	{"tenant.policy.deleted", "tenant.policies", true},
	{"tenant.policy.attached", "tenant.policies", true},
	{"tenant.policy.detached", "tenant.policies", true},
	{"tenant.principal_authentication_policy.resolved", "tenant.policies", true},
	{"tenant.product_access_policy.updated", "tenant.policies", true},
	{"tenant.third_party_app_policy.updated", "tenant.policies", true},
	{"tenant.scim.setup.started", "tenant.scim", true},
	{"tenant.scim.deletion.requested", "tenant.scim", true},
	{"tenant.scim.directory.created", "tenant.scim", true},
	{"tenant.resource_share_grant.created", "tenant.resource_sharing", true},
	{"tenant.resource_share_grant.updated", "tenant.resource_sharing", true},
	{"tenant.resource_share_grant.accepted", "tenant.resource_sharing", true},
	{"tenant.resource_share_grant.declined", "tenant.resource_sharing", true},
	{"tenant.resource_share_grant.revoked", "tenant.resource_sharing", true},
	{"tenant.resource_share_grant.deleted", "tenant.resource_sharing", true},
	{"tenant.service_account.updated", "tenant.service_accounts", true},
	{"tenant.service_account.deleted", "tenant.service_accounts", true},
	{"tenant.service_account.token.revoked", "tenant.service_accounts", true},
	{"tenant.billing.overage_limit.updated", "tenant.billing", true},
	{"tenant.billing.alerts.updated", "tenant.billing", true},
	{"tenant.billing.info.updated", "tenant.billing", true},
	{"tenant.usage_limit.workspace.updated", "tenant.usage_limits", true},
	{"tenant.usage_limit.group.updated", "tenant.usage_limits", true},
	{"tenant.usage_limit.user.updated", "tenant.usage_limits", true},
	{"tenant.usage_limit.increase_request.updated", "tenant.usage_limits", true},
	{"tenant.usage_limit.increase_request.resolved", "tenant.usage_limits", true},
	{"tenant.group.created", "tenant.groups", true},
	{"tenant.group.updated", "tenant.groups", true},
	{"tenant.group.deleted", "tenant.groups", true},
	{"tenant.group.member.added", "tenant.groups", true},
	{"tenant.group.member.removed", "tenant.groups", true},
	{"tenant.role.metadata.updated", "tenant.rbac", true},
	{"tenant.custom_role.created", "tenant.rbac", true},
	{"tenant.custom_role.updated", "tenant.rbac", true},
	{"tenant.custom_role.deleted", "tenant.rbac", true},
	{"tenant.role_assignment.created", "tenant.rbac", true},
	{"tenant.role_assignment.deleted", "tenant.rbac", true},
	{"tenant.resource_role_assignment.created", "tenant.rbac", true},
	{"tenant.resource_role_assignment.deleted", "tenant.rbac", true},
	{"tenant.resource_access.updated", "tenant.rbac", true},
	{"tenant.resource_access.deleted", "tenant.rbac", true},
	{"tenant.ads_account.onboarding.redemption", "tenant.ads", true},
	{"tenant.trusted_access.business_verification.started", "tenant.trusted_access", true},
	{"tenant.trusted_access.application.submitted", "tenant.trusted_access", true},
	{"tenant.session_policy.created", "tenant.sessions", true},
	{"tenant.session_policy.updated", "tenant.sessions", true},
	{"tenant.session_policy.deleted", "tenant.sessions", true},
	{"tenant.session_revocation.started", "tenant.sessions", true},
	{"tenant.user.added", "tenant.users", true},
	{"tenant.user.updated", "tenant.users", true},
	{"tenant.user.removed", "tenant.users", true},
	{"tenant.user.looked_up", "tenant.users", true},
	{"tenant.user.invited", "tenant.users", true},
	{"tenant.membership.revoked", "tenant.users", true},
	{"tenant.membership.accepted", "tenant.users", true},
	{"tenant.membership.declined", "tenant.users", true},
	{"tenant.api_organization_invite.upserted", "tenant.users", true},
	{"tenant.api_organization_invite.deleted", "tenant.users", true},
	{"tenant.chatgpt_workspace_invite.upserted", "tenant.users", true},
	{"tenant.workspace_invite_email_settings.updated", "tenant.users", true},
}

// unknownEventTypes are the types the generator injects to imitate event
// types OpenAI adds after the simulated spec version (Config.UnknownTypeRate).
// The tenant.* one is tenant-scoped like every tenant.* type.
var unknownEventTypes = []string{
	"future.thing.happened",
	"agent.session.started",
	"tenant.future_policy.enforced",
}

var eventTypeIndex = func() map[string]EventType {
	m := make(map[string]EventType, len(eventTypes))
	for _, et := range eventTypes {
		m[et.Name] = et
	}
	return m
}()

// EventTypes returns the 147 known event types in reference order. The
// returned slice is a copy.
func EventTypes() []EventType {
	return append([]EventType(nil), eventTypes...)
}

// KnownEventType reports whether name is one of the 147 known types.
func KnownEventType(name string) bool {
	_, ok := eventTypeIndex[name]
	return ok
}

// TenantScoped reports whether events of type name are tenant-scoped: the
// known tenant-scoped types, and any unknown type in the tenant.* namespace.
func TenantScoped(name string) bool {
	if et, ok := eventTypeIndex[name]; ok {
		return et.TenantScoped
	}
	return strings.HasPrefix(name, "tenant.")
}
