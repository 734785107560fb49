package detections_test

import (
	"testing"
	"time"
)

// ruleCase is one scenario for one rule: events in a workspace of its
// own, and exactly the findings the rule must produce.
type ruleCase struct {
	name   string
	events []event
	want   []finding
}

// failures returns n login.failed events for email from IPs ipOf(i),
// every step apart from at.
func failures(prefix, email string, n int, at, step time.Duration, ipOf func(i int) string) []event {
	var out []event
	for i := range n {
		out = append(out, event{ID: ids(prefix, n)[i], Name: "login.failed", At: at + time.Duration(i)*step, Email: email,
			IP: ipOf(i), Country: "US", Payload: map[string]any{"error_code": "invalid_credentials", "error_message": "Wrong email or password."}})
	}
	return out
}

func distinctIPs(i int) string { return "198.51.100." + itoa(10+i) }
func sameIP(int) string        { return "198.51.100.7" }

// Places sessions come from.
var (
	sanFrancisco = place{"73.189.72.10", "US", 37.7749, -122.4194}
	newYork      = place{"100.33.14.20", "US", 40.7128, -74.0060}
	oakland      = place{"73.189.73.30", "US", 37.8044, -122.2712}
	sydney       = place{"110.142.32.40", "AU", -33.8688, 151.2093}
	tokyo        = place{"106.128.40.50", "JP", 35.6762, 139.6503}
)

type place struct {
	ip, country string
	lat, lon    float64
}

// session returns an event of a session actor at p.
func session(id, name, email string, at time.Duration, p place) event {
	return event{ID: id, Name: name, At: at, Email: email, UserID: "user-" + email, IP: p.ip, Country: p.country, Lat: p.lat, Lon: p.lon}
}

// old marks an event as received long ago (history, not new).
func old(e event) event {
	e.Received = -e.At + time.Hour
	return e
}

// admin returns an event by the session of admin@example.com with payload.
func admin(id, name string, at time.Duration, payload map[string]any) event {
	e := session(id, name, "admin@example.com", at, sanFrancisco)
	e.Payload = payload
	return e
}

// keyEvent returns an event performed with API key keyID of user (or of
// service account sa).
func keyEvent(id, name string, at time.Duration, keyID, userID, sa string) event {
	e := event{ID: id, Name: name, At: at, KeyID: keyID, KeyType: "user", UserID: userID}
	if sa != "" {
		e.KeyType, e.ServiceAccount = "service_account", sa
	}
	return e
}

type obj = map[string]any

const day = 24 * time.Hour

var ruleCases = map[string][]ruleCase{
	"credential_stuffing": {
		{
			name:   "5 distinct IPs within 30 min",
			events: failures("cs", "Victim@Example.com", 5, 2*time.Minute, 3*time.Minute, distinctIPs),
			want:   []finding{{Severity: "HIGH", Entity: "victim@example.com", EventIDs: ids("cs", 5), Details: map[string]string{"distinct_ips": "5"}}},
		},
		{
			name:   "4 distinct IPs",
			events: failures("cs", "victim@example.com", 4, 0, time.Minute, distinctIPs),
		},
		{
			name:   "5 distinct IPs spread over more than 30 min",
			events: failures("cs", "victim@example.com", 5, 0, 8*time.Minute, distinctIPs),
		},
		{
			name:   "10 failures from one IP",
			events: failures("cs", "victim@example.com", 10, 0, time.Minute, sameIP),
		},
	},
	"brute_force_success": {
		{
			name: "5 failures then a success",
			events: append(failures("bf", "user@example.com", 5, 0, time.Minute, sameIP),
				event{ID: "bf-ok", Name: "login.succeeded", At: 10 * time.Minute, Email: "user@example.com", IP: "198.51.100.7", Country: "US"}),
			want: []finding{{Severity: "HIGH", Entity: "user@example.com", EventIDs: append(ids("bf", 5), "bf-ok"),
				Details: map[string]string{"failures": "5", "success_ip_among_failures": "true"}}},
		},
		{
			name: "success before the failures",
			events: append(failures("bf", "user@example.com", 6, time.Minute, time.Minute, sameIP),
				event{ID: "bf-ok", Name: "login.succeeded", At: 0, Email: "user@example.com", IP: "198.51.100.7", Country: "US"}),
		},
		{
			name: "4 failures then a success",
			events: append(failures("bf", "user@example.com", 4, 0, time.Minute, sameIP),
				event{ID: "bf-ok", Name: "login.succeeded", At: 10 * time.Minute, Email: "user@example.com", IP: "198.51.100.7", Country: "US"}),
		},
		{
			name: "a success in between resets the count",
			events: append(append(failures("bf", "user@example.com", 3, 0, time.Minute, sameIP),
				event{ID: "bf-ok1", Name: "login.succeeded", At: 4 * time.Minute, Email: "user@example.com", IP: "198.51.100.7", Country: "US"}),
				append(failures("bfb", "user@example.com", 3, 5*time.Minute, time.Minute, sameIP),
					event{ID: "bf-ok2", Name: "login.succeeded", At: 10 * time.Minute, Email: "user@example.com", IP: "198.51.100.7", Country: "US"})...),
		},
		{
			name: "failures older than 30 min",
			events: append(failures("bf", "user@example.com", 5, 0, time.Minute, sameIP),
				event{ID: "bf-ok", Name: "login.succeeded", At: 40 * time.Minute, Email: "user@example.com", IP: "198.51.100.7", Country: "US"}),
		},
	},
	"password_spraying": {
		{
			name: "one IP fails for 5 emails",
			events: func() []event {
				var out []event
				for i, id := range ids("ps", 5) {
					out = append(out, session(id, "login.failed", "user"+itoa(i)+"@example.com", time.Duration(i)*time.Minute, tokyo))
				}
				return out
			}(),
			want: []finding{{Severity: "HIGH", Entity: tokyo.ip, EventIDs: ids("ps", 5), Details: map[string]string{"distinct_emails": "5"}}},
		},
		{
			name: "one IP fails for 4 emails, 8 times",
			events: func() []event {
				var out []event
				for i, id := range ids("ps", 8) {
					out = append(out, session(id, "login.failed", "user"+itoa(i%4)+"@example.com", time.Duration(i)*time.Minute, tokyo))
				}
				return out
			}(),
		},
		{
			name: "5 emails fail from 5 IPs",
			events: func() []event {
				var out []event
				for i, id := range ids("ps", 5) {
					p := tokyo
					p.ip = distinctIPs(i)
					out = append(out, session(id, "login.failed", "user"+itoa(i)+"@example.com", time.Duration(i)*time.Minute, p))
				}
				return out
			}(),
		},
	},
	"mfa_failures": {
		{
			name: "3 MFA failures in 10 min",
			events: func() []event {
				var out []event
				for i, id := range ids("mfa", 3) {
					e := session(id, "login.failed", "user@example.com", time.Duration(i)*2*time.Minute, sanFrancisco)
					e.Payload = obj{"error_code": "mfa_failed", "error_message": "The verification code is incorrect."}
					out = append(out, e)
				}
				return out
			}(),
			want: []finding{{Severity: "HIGH", Entity: "user@example.com", EventIDs: ids("mfa", 3), Details: map[string]string{"failures": "3"}}},
		},
		{
			name: "3 password failures",
			events: func() []event {
				var out []event
				for i, id := range ids("mfa", 3) {
					e := session(id, "login.failed", "user@example.com", time.Duration(i)*2*time.Minute, sanFrancisco)
					e.Payload = obj{"error_code": "invalid_credentials"}
					out = append(out, e)
				}
				return out
			}(),
		},
		{
			name: "3 MFA failures over 30 min",
			events: func() []event {
				var out []event
				for i, id := range ids("mfa", 3) {
					e := session(id, "login.failed", "user@example.com", time.Duration(i)*15*time.Minute, sanFrancisco)
					e.Payload = obj{"error_code": "mfa_failed"}
					out = append(out, e)
				}
				return out
			}(),
		},
	},
	"privileged_role_assigned": {
		{
			name: "owner roles and an admin role",
			events: []event{
				admin("pr-1", "user.updated", 0, obj{"id": "user-bob", "changes_requested": obj{"role": "owner"}}),
				admin("pr-2", "user.added", time.Minute, obj{"id": "user-carol", "data": obj{"role": "owner"}}),
				admin("pr-3", "service_account.created", 2*time.Minute, obj{"id": "svc_acct_1", "data": obj{"role": "owner"}}),
				admin("pr-4", "invite.sent", 3*time.Minute, obj{"id": "invite-1", "data": obj{"email": "Dave@Example.com", "role": "owner"}}),
				admin("pr-5", "role.assignment.created", 4*time.Minute, obj{"id": "ra_1", "principal_id": "user-erin", "principal_type": "user", "role_name": "Org Admin", "resource_type": "api.organization"}),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "dave@example.com", EventIDs: []string{"pr-4"}, Details: map[string]string{"scope": "invitation", "granted_by": "admin@example.com"}},
				{Severity: "HIGH", Entity: "svc_acct_1", EventIDs: []string{"pr-3"}, Details: map[string]string{"scope": "project"}},
				{Severity: "CRITICAL", Entity: "user-bob", EventIDs: []string{"pr-1"}, Details: map[string]string{"scope": "organization", "role": "owner"}},
				{Severity: "CRITICAL", Entity: "user-carol", EventIDs: []string{"pr-2"}},
				{Severity: "HIGH", Entity: "user-erin", EventIDs: []string{"pr-5"}, Details: map[string]string{"role": "Org Admin"}},
			},
		},
		{
			name: "reader and member roles, an assignment without a role name",
			events: []event{
				admin("pr-1", "user.updated", 0, obj{"id": "user-bob", "changes_requested": obj{"role": "reader"}}),
				admin("pr-2", "user.added", time.Minute, obj{"id": "user-carol", "data": obj{"role": "reader"}}),
				admin("pr-3", "service_account.updated", 2*time.Minute, obj{"id": "svc_acct_1", "changes_requested": obj{"role": "member"}}),
				admin("pr-4", "invite.sent", 3*time.Minute, obj{"id": "invite-1", "data": obj{"email": "dave@example.com", "role": "member"}}),
				admin("pr-5", "role.assignment.created", 4*time.Minute, obj{"id": "ra_1", "principal_id": "user-erin", "principal_type": "user", "resource_type": "api.project"}),
				admin("pr-6", "role.created", 5*time.Minute, obj{"id": "role_1", "role_name": "Billing Admin"}),
			},
		},
	},
	"api_key_elevated_scopes": {
		{
			name: "created with all, updated with api_keys:write",
			events: []event{
				admin("ks-1", "api_key.created", 0, obj{"id": "key_new", "data": obj{"scopes": []string{"api.model.read", "all"}}}),
				admin("ks-2", "api_key.updated", time.Minute, obj{"id": "key_old", "changes_requested": obj{"scopes": []string{"API_KEYS:WRITE"}}}),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "key_new", EventIDs: []string{"ks-1"}, Details: map[string]string{"elevated_scopes": "all", "scopes": "api.model.read,all"}},
				{Severity: "HIGH", Entity: "key_old", EventIDs: []string{"ks-2"}, Details: map[string]string{"elevated_scopes": "API_KEYS:WRITE", "event": "api_key.updated"}},
			},
		},
		{
			name: "ordinary scopes",
			events: []event{
				admin("ks-1", "api_key.created", 0, obj{"id": "key_new", "data": obj{"scopes": []string{"api.model.read", "api.files.write"}}}),
				admin("ks-2", "api_key.updated", time.Minute, obj{"id": "key_old", "changes_requested": obj{"scopes": []string{"api.model.request"}}}),
				admin("ks-3", "api_key.deleted", 2*time.Minute, obj{"id": "key_all"}),
			},
		},
	},
	"admin_api_key_created": {
		{
			name: "created and updated",
			events: []event{
				admin("ak-1", "tenant.admin_api_key.created", 0, obj{"id": "key_admin", "tenant_id": "org-1"}),
				admin("ak-2", "tenant.admin_api_key.updated", time.Minute, obj{"tenant_id": "org-1"}),
			},
			want: []finding{
				{Severity: "MEDIUM", Entity: "ak-2", EventIDs: []string{"ak-2"}},
				{Severity: "HIGH", Entity: "key_admin", EventIDs: []string{"ak-1"}},
			},
		},
		{
			name: "project keys and deletions",
			events: []event{
				admin("ak-1", "tenant.project_api_key.created", 0, obj{"id": "key_p"}),
				admin("ak-2", "tenant.admin_api_key.deleted", time.Minute, obj{"id": "key_admin"}),
			},
		},
	},
	"ip_allowlist_changed": {
		{
			name: "every change",
			events: []event{
				admin("al-1", "ip_allowlist.deleted", 0, obj{"id": "ipal_1", "name": "office", "allowed_ips": []string{"73.189.72.0/24"}}),
				admin("al-2", "ip_allowlist.config.deactivated", time.Minute, obj{"configs": []obj{{"id": "ipal_2", "name": "vpn"}, {"id": "ipal_3", "name": "ci"}}}),
				admin("al-3", "ip_allowlist.updated", 2*time.Minute, obj{"id": "ipal_4", "allowed_ips": []string{"0.0.0.0/0"}}),
				admin("al-4", "ip_allowlist.created", 3*time.Minute, obj{"id": "ipal_5", "name": "new", "allowed_ips": []string{"10.0.0.0/8"}}),
				admin("al-5", "ip_allowlist.config.activated", 4*time.Minute, obj{"configs": []obj{{"id": "ipal_5", "name": "new"}}}),
				admin("al-6", "ip_allowlist.config.deactivated", 5*time.Minute, obj{"configs": []obj{}}),
			},
			want: []finding{
				{Severity: "CRITICAL", Entity: "al-6", EventIDs: []string{"al-6"}},
				{Severity: "CRITICAL", Entity: "ipal_1", EventIDs: []string{"al-1"}, Details: map[string]string{"name": "office", "allowed_ips": "73.189.72.0/24"}},
				{Severity: "CRITICAL", Entity: "ipal_2", EventIDs: []string{"al-2"}, Details: map[string]string{"name": "vpn"}},
				{Severity: "CRITICAL", Entity: "ipal_3", EventIDs: []string{"al-2"}, Details: map[string]string{"name": "ci"}},
				{Severity: "HIGH", Entity: "ipal_4", EventIDs: []string{"al-3"}, Details: map[string]string{"allowed_ips": "0.0.0.0/0"}},
				{Severity: "MEDIUM", Entity: "ipal_5", EventIDs: []string{"al-4"}},
				{Severity: "MEDIUM", Entity: "ipal_5", EventIDs: []string{"al-5"}},
			},
		},
		{
			name: "neighbouring events",
			events: []event{
				admin("al-1", "organization.updated", 0, obj{"id": "org-1", "changes_requested": obj{"title": "x"}}),
				admin("al-2", "login.succeeded", time.Minute, nil),
			},
		},
	},
	"scim_changed": {
		{
			name: "disabled and enabled",
			events: []event{
				admin("sc-1", "scim.disabled", 0, obj{"id": "org-1"}),
				admin("sc-2", "scim.enabled", time.Minute, obj{"id": "org-1"}),
				admin("sc-3", "tenant.scim.deletion.requested", 2*time.Minute, nil),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "org-1", EventIDs: []string{"sc-1"}, Details: map[string]string{"event": "scim.disabled"}},
				{Severity: "LOW", Entity: "org-1", EventIDs: []string{"sc-2"}},
				{Severity: "HIGH", Entity: "organization", EventIDs: []string{"sc-3"}},
			},
		},
		{
			name: "SCIM setup steps",
			events: []event{
				admin("sc-1", "tenant.scim.setup.started", 0, obj{"id": "scim_1"}),
				admin("sc-2", "tenant.scim.directory.created", time.Minute, obj{"id": "scim_1"}),
			},
		},
	},
	"org_security_settings_changed": {
		{
			name: "logging off, logging changed, SSO deleted, session policy updated",
			events: []event{
				admin("os-1", "organization.updated", 0, obj{"id": "org-1", "changes_requested": obj{"api_call_logging": "disabled"}}),
				admin("os-2", "organization.updated", time.Minute, obj{"id": "org-1", "changes_requested": obj{"api_call_logging": "enabled_per_call", "title": "x"}}),
				admin("os-3", "tenant.sso_connection.deleted", 2*time.Minute, obj{"id": "sso_1", "reason": "admin_action"}),
				admin("os-4", "tenant.session_policy.updated", 3*time.Minute, obj{"id": "sp_1", "changes_requested": obj{"status": "active"}}),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "org-1", EventIDs: []string{"os-1"}, Details: map[string]string{"settings": `api_call_logging="disabled"`}},
				{Severity: "MEDIUM", Entity: "org-1", EventIDs: []string{"os-2"}, Details: map[string]string{"settings": `api_call_logging="enabled_per_call"`}},
				{Severity: "MEDIUM", Entity: "sp_1", EventIDs: []string{"os-4"}},
				{Severity: "HIGH", Entity: "sso_1", EventIDs: []string{"os-3"}, Details: map[string]string{"event": "tenant.sso_connection.deleted"}},
			},
		},
		{
			name: "title and visibility changes",
			events: []event{
				admin("os-1", "organization.updated", 0, obj{"id": "org-1", "changes_requested": obj{"title": "Acme Inc.", "description": "Production"}}),
				admin("os-2", "organization.updated", time.Minute, obj{"id": "org-1", "changes_requested": obj{"threads_ui_visibility": "OWNERS"}}),
				admin("os-3", "tenant.billing.info.updated", 2*time.Minute, obj{"id": "b_1"}),
			},
		},
	},
	"login_new_country": {
		{
			name: "Japan after a month of US logins, a country last seen 40 days ago, a second login abroad",
			events: []event{
				old(session("nc-1", "login.succeeded", "amy@example.com", -10*day, sanFrancisco)),
				old(session("nc-2", "login.succeeded", "amy@example.com", -1*day, newYork)),
				session("nc-3", "login.succeeded", "amy@example.com", 0, tokyo),
				session("nc-4", "login.succeeded", "amy@example.com", time.Hour, tokyo),
				old(session("nc-5", "login.succeeded", "ben@example.com", -40*day, sydney)),
				old(session("nc-6", "login.succeeded", "ben@example.com", -2*day, sanFrancisco)),
				session("nc-7", "login.succeeded", "ben@example.com", 0, sydney),
				session("nc-8", "login.succeeded", "new@example.com", 0, sydney),
				session("nc-9", "login.succeeded", "new@example.com", time.Hour, tokyo),
			},
			want: []finding{
				{Severity: "MEDIUM", Entity: "amy@example.com", EventIDs: []string{"nc-3"}, Details: map[string]string{"country": "JP", "baseline_countries": "US", "baseline_logins": "2"}},
				{Severity: "MEDIUM", Entity: "ben@example.com", EventIDs: []string{"nc-7"}, Details: map[string]string{"country": "AU"}},
				{Severity: "MEDIUM", Entity: "new@example.com", EventIDs: []string{"nc-9"}, Details: map[string]string{"country": "JP", "baseline_countries": "AU"}},
			},
		},
		{
			name: "known countries, a new user's first login, failures abroad",
			events: []event{
				old(session("nc-1", "login.succeeded", "amy@example.com", -20*day, tokyo)),
				old(session("nc-2", "login.succeeded", "amy@example.com", -1*day, sanFrancisco)),
				session("nc-3", "login.succeeded", "amy@example.com", 0, tokyo),
				session("nc-4", "login.succeeded", "new@example.com", 0, sydney),
				old(session("nc-6", "login.succeeded", "ben@example.com", -1*day, sanFrancisco)),
				session("nc-7", "login.failed", "ben@example.com", 0, sydney),
			},
		},
	},
	"impossible_travel": {
		{
			name: "San Francisco to Sydney in an hour, Tokyo and New York in the same second",
			events: []event{
				session("it-1", "login.succeeded", "amy@example.com", 0, sanFrancisco),
				session("it-2", "project.updated", "amy@example.com", time.Hour, sydney),
				session("it-3", "login.succeeded", "ben@example.com", 0, tokyo),
				session("it-4", "login.succeeded", "ben@example.com", 0, newYork),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "amy@example.com", EventIDs: []string{"it-1", "it-2"}, Details: map[string]string{"seconds": "3600", "from_ip": sanFrancisco.ip, "to_ip": sydney.ip}},
				{Severity: "HIGH", Entity: "ben@example.com", EventIDs: []string{"it-3", "it-4"}, Details: map[string]string{"seconds": "0", "speed_kmh": "inf"}},
			},
		},
		{
			name: "a flight, a short hop, API keys, no coordinates, a failed login abroad",
			events: []event{
				session("it-1", "login.succeeded", "amy@example.com", 0, sanFrancisco),
				session("it-2", "login.succeeded", "amy@example.com", 6*time.Hour, newYork),
				session("it-3", "login.succeeded", "ben@example.com", 0, sanFrancisco),
				session("it-4", "login.succeeded", "ben@example.com", time.Minute, oakland),
				keyEvent("it-5", "api_key.created", 2*time.Minute, "key_1", "user-ben@example.com", ""),
				session("it-6", "login.succeeded", "cat@example.com", 0, place{"", "", 0, 0}),
				session("it-7", "login.succeeded", "cat@example.com", time.Minute, sydney),
				session("it-8", "login.succeeded", "dan@example.com", 0, sanFrancisco),
				session("it-9", "login.failed", "dan@example.com", time.Minute, tokyo),
				session("it-10", "logout.succeeded", "dan@example.com", 2*time.Minute, sanFrancisco),
			},
		},
	},
	"mass_deletion": {
		{
			name: "5 deletions in 5 minutes",
			events: []event{
				admin("md-1", "user.deleted", 0, obj{"id": "user-1"}),
				admin("md-2", "user.deleted", time.Minute, obj{"id": "user-2"}),
				admin("md-3", "api_key.deleted", 2*time.Minute, obj{"id": "key_1"}),
				admin("md-4", "api_key.deleted", 3*time.Minute, obj{"id": "key_2"}),
				admin("md-5", "project.deleted", 4*time.Minute, obj{"id": "proj_1"}),
			},
			want: []finding{{Severity: "HIGH", Entity: "admin@example.com", EventIDs: ids("md", 5),
				Details: map[string]string{"deletions": "5", "by_type": "api_key.deleted=2,project.deleted=1,user.deleted=2", "resources": "key_1,key_2,proj_1,user-1,user-2"}}},
		},
		{
			name: "4 deletions, 5 actors, an hour",
			events: func() []event {
				var out []event
				for i, id := range ids("md-a", 4) {
					out = append(out, admin(id, "user.deleted", time.Duration(i)*time.Minute, obj{"id": "user-" + itoa(i)}))
				}
				for i, id := range ids("md-b", 5) {
					e := admin(id, "api_key.deleted", time.Duration(i)*time.Minute, obj{"id": "key_" + itoa(i)})
					e.Email = "admin" + itoa(i) + "@example.com"
					out = append(out, e)
				}
				for i, id := range ids("md-c", 5) {
					e := admin(id, "project.archived", time.Duration(i)*15*time.Minute, obj{"id": "proj_" + itoa(i)})
					e.Email = "archivist@example.com"
					out = append(out, e)
				}
				return out
			}(),
		},
	},
	"credential_creation_burst": {
		{
			name: "3 creations in 2 hours",
			events: []event{
				admin("cb-1", "api_key.created", 0, obj{"id": "key_1"}),
				admin("cb-2", "service_account.created", time.Hour, obj{"id": "svc_1"}),
				admin("cb-3", "api_key.created", 2*time.Hour, obj{"id": "key_2"}),
			},
			want: []finding{{Severity: "MEDIUM", Entity: "admin@example.com", EventIDs: ids("cb", 3),
				Details: map[string]string{"creations": "3", "by_type": "api_key.created=2,service_account.created=1"}}},
		},
		{
			name: "2 creations, 3 over 3 days",
			events: []event{
				admin("cb-1", "api_key.created", 0, obj{"id": "key_1"}),
				admin("cb-2", "invite.sent", time.Hour, obj{"id": "inv_1"}),
				keyEvent("cb-3", "api_key.created", -2*day, "key_9", "user-x", "svc_9"),
				keyEvent("cb-4", "api_key.created", -day, "key_9", "user-x", "svc_9"),
				keyEvent("cb-5", "api_key.created", time.Hour, "key_9", "user-x", "svc_9"),
			},
		},
	},
	"credential_creation_after_dormancy": {
		{
			name: "a key after 20 days, a first key of a 30-day-old actor",
			events: []event{
				old(admin("cd-1", "login.succeeded", -30*day, nil)),
				old(admin("cd-2", "api_key.created", -20*day, obj{"id": "key_1"})),
				admin("cd-3", "api_key.created", 0, obj{"id": "key_2"}),
				old(keyEvent("cd-4", "project.updated", -30*day, "key_s", "", "svc_1")),
				keyEvent("cd-5", "service_account.created", time.Hour, "key_s", "", "svc_1"),
			},
			want: []finding{
				{Severity: "LOW", Entity: "admin@example.com", EventIDs: []string{"cd-3"}, Details: map[string]string{"event": "api_key.created"}},
				{Severity: "LOW", Entity: "svc_1", EventIDs: []string{"cd-5"}, Details: map[string]string{"previous_creation": "none"}},
			},
		},
		{
			name: "a key 3 days after the last, a new actor",
			events: []event{
				old(admin("cd-1", "login.succeeded", -30*day, nil)),
				old(admin("cd-2", "api_key.created", -3*day, obj{"id": "key_1"})),
				admin("cd-3", "api_key.created", 0, obj{"id": "key_2"}),
				old(session("cd-4", "login.succeeded", "new@example.com", -2*day, sanFrancisco)),
				session("cd-5", "invite.sent", "new@example.com", 0, sanFrancisco),
			},
		},
	},
	"invite_external_domain": {
		{
			name: "invitations to outside domains",
			events: []event{
				old(session("ie-1", "login.succeeded", "amy@example.com", -5*day, sanFrancisco)),
				admin("ie-2", "invite.sent", 0, obj{"id": "invite-1", "data": obj{"email": "Mallory@Evil.example", "role": "member"}}),
				admin("ie-3", "invite.sent", time.Minute, obj{"id": "invite-2", "data": obj{"email": "eve@other.example", "role": "owner"}}),
				session("ie-4", "login.succeeded", "mallory@evil.example", 2*time.Minute, tokyo),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "eve@other.example", EventIDs: []string{"ie-3"}, Details: map[string]string{"domain": "other.example", "role": "owner"}},
				{Severity: "MEDIUM", Entity: "mallory@evil.example", EventIDs: []string{"ie-2"}, Details: map[string]string{"domain": "evil.example", "invited_by": "admin@example.com"}},
			},
		},
		{
			name: "invitations to members' domains",
			events: []event{
				old(session("ie-1", "login.succeeded", "amy@corp.example", -5*day, sanFrancisco)),
				admin("ie-2", "invite.sent", 0, obj{"id": "invite-1", "data": obj{"email": "bob@example.com", "role": "member"}}),
				admin("ie-3", "invite.sent", time.Minute, obj{"id": "invite-2", "data": obj{"email": "carl@corp.example", "role": "owner"}}),
				admin("ie-4", "invite.sent", 2*time.Minute, obj{"id": "invite-3"}),
			},
		},
	},
	"certificate_changed": {
		{
			name: "activated, deleted, uploaded",
			events: []event{
				admin("ce-1", "certificates.activated", 0, obj{"certificates": []obj{{"id": "cert_1", "name": "a"}, {"id": "cert_2", "name": "b"}}}),
				admin("ce-2", "certificate.deleted", time.Minute, obj{"id": "cert_3", "name": "c", "certificate": "-----BEGIN CERTIFICATE-----"}),
				admin("ce-3", "certificate.created", 2*time.Minute, obj{"id": "cert_4", "name": "d"}),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "cert_1", EventIDs: []string{"ce-1"}, Details: map[string]string{"name": "a"}},
				{Severity: "HIGH", Entity: "cert_2", EventIDs: []string{"ce-1"}, Details: map[string]string{"name": "b"}},
				{Severity: "HIGH", Entity: "cert_3", EventIDs: []string{"ce-2"}},
				{Severity: "MEDIUM", Entity: "cert_4", EventIDs: []string{"ce-3"}},
			},
		},
		{
			name: "other key material",
			events: []event{
				admin("ce-1", "external_key.registered", 0, obj{"id": "ekey_1"}),
				admin("ce-2", "checkpoint.permission.created", time.Minute, obj{"id": "cp_1"}),
			},
		},
	},
	"rate_limit_raised": {
		{
			name: "requests per minute raised tenfold",
			events: []event{
				old(admin("rl-1", "rate_limit.updated", -day, obj{"id": "rl-gpt-4o", "changes_requested": obj{"max_requests_per_1_minute": 500, "max_tokens_per_1_minute": 10000}})),
				admin("rl-2", "rate_limit.updated", 0, obj{"id": "rl-gpt-4o", "changes_requested": obj{"max_requests_per_1_minute": 5000, "max_tokens_per_1_minute": 10000}}),
			},
			want: []finding{{Severity: "MEDIUM", Entity: "rl-gpt-4o", EventIDs: []string{"rl-1", "rl-2"},
				Details: map[string]string{"raised": "max_requests_per_1_minute: 500 -> 5000"}}},
		},
		{
			name: "lowered, unchanged, no baseline",
			events: []event{
				old(admin("rl-1", "rate_limit.updated", -day, obj{"id": "rl-gpt-4o", "changes_requested": obj{"max_requests_per_1_minute": 5000}})),
				admin("rl-2", "rate_limit.updated", 0, obj{"id": "rl-gpt-4o", "changes_requested": obj{"max_requests_per_1_minute": 500}}),
				admin("rl-3", "rate_limit.updated", time.Minute, obj{"id": "rl-gpt-4o", "changes_requested": obj{"max_requests_per_1_minute": 500}}),
				admin("rl-4", "rate_limit.updated", 0, obj{"id": "rl-o3", "changes_requested": obj{"max_requests_per_1_minute": 100000}}),
			},
		},
	},
	"deleted_principal_key_activity": {
		{
			name: "keys of a deleted user, service account and key",
			events: []event{
				admin("dk-1", "user.deleted", -time.Hour, obj{"id": "user-gone"}),
				keyEvent("dk-2", "project.updated", 0, "key_u", "user-gone", ""),
				keyEvent("dk-3", "api_key.created", time.Minute, "key_u", "user-gone", ""),
				admin("dk-4", "service_account.deleted", -time.Hour, obj{"id": "svc_gone"}),
				keyEvent("dk-5", "rate_limit.updated", 0, "key_s", "", "svc_gone"),
				admin("dk-6", "api_key.deleted", -time.Hour, obj{"id": "key_k"}),
				keyEvent("dk-7", "project.created", 0, "key_k", "user-alive", ""),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "key_k", EventIDs: []string{"dk-6", "dk-7"}, Details: map[string]string{"deleted": "api_key.deleted"}},
				{Severity: "HIGH", Entity: "key_s", EventIDs: []string{"dk-4", "dk-5"}, Details: map[string]string{"deleted": "service_account.deleted", "deleted_id": "svc_gone"}},
				{Severity: "HIGH", Entity: "key_u", EventIDs: []string{"dk-1", "dk-2", "dk-3"}, Details: map[string]string{"deleted": "user.deleted", "events": "api_key.created,project.updated"}},
			},
		},
		{
			name: "activity before the deletion, other keys",
			events: []event{
				keyEvent("dk-1", "project.updated", -2*time.Hour, "key_u", "user-gone", ""),
				admin("dk-2", "user.deleted", -time.Hour, obj{"id": "user-gone"}),
				keyEvent("dk-3", "project.updated", 0, "key_v", "user-alive", ""),
				session("dk-4", "login.succeeded", "gone@example.com", 0, sanFrancisco),
			},
		},
	},
	"workload_identity_trust_changed": {
		{
			name: "provider created, mapping updated",
			events: []event{
				admin("wi-1", "workload_identity_provider.created", 0, obj{"id": "wip_1", "data": obj{"issuer": "https://token.actions.githubusercontent.com"}}),
				admin("wi-2", "workload_identity_provider_mapping.updated", time.Minute, obj{"id": "wipm_1", "identity_provider_id": "wip_1"}),
				admin("wi-3", "tenant.workload_identity.binding.created", 2*time.Minute, obj{"id": "wib_1"}),
			},
			want: []finding{
				{Severity: "MEDIUM", Entity: "wib_1", EventIDs: []string{"wi-3"}},
				{Severity: "HIGH", Entity: "wip_1", EventIDs: []string{"wi-1"}},
				{Severity: "MEDIUM", Entity: "wipm_1", EventIDs: []string{"wi-2"}, Details: map[string]string{"provider_id": "wip_1"}},
			},
		},
		{
			name: "tokens issued, principals provisioned",
			events: []event{
				admin("wi-1", "tenant.workload_identity.access_token.issued", 0, obj{"id": "tok_1"}),
				admin("wi-2", "tenant.workload_identity.principal.provisioned", time.Minute, obj{"id": "pr_1"}),
			},
		},
	},
}

func TestRules(t *testing.T) {
	e := sharedEnv(t)
	for rule, cases := range ruleCases {
		t.Run(rule, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ws := e.ws(rule + "-" + itoa(i))
					e.insert(ws, c.events...)
					e.run(rule)
					requireFindings(t, c.want, e.findings(rule, ws))
				})
			}
		})
	}
}
