package openaisim

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// auditItem is what applying an audit event to the inventory reads of it.
type auditItem struct {
	Type        string   `json:"type"`
	EffectiveAt int64    `json:"effective_at"`
	Project     *Project `json:"project"`
	Actor       *Actor   `json:"actor"`
}

// changesInventory reports whether events of type typ change the
// inventory (the types DropRate and DropAudit drop).
func changesInventory(typ string) bool {
	for _, p := range []string{"api_key.", "user.", "invite.", "project.", "service_account.", "certificate.", "certificates.", "group.", "role.created", "role.updated", "role.deleted", "role.assignment.", "rate_limit.", "tenant.admin_api_key."} {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// apply changes the inventory as the audit event raw says: the object its
// payload names is created, updated or deleted, and an API key that acted
// is marked used. Events about objects the inventory does not hold (an
// update of a deleted key, say) change nothing; so does anything that
// does not parse.
func (inv *inventory) apply(raw []byte) {
	var it auditItem
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &it) != nil || json.Unmarshal(raw, &fields) != nil {
		return
	}
	var p map[string]any
	_ = json.Unmarshal(fields[it.Type], &p)
	if p == nil {
		p = map[string]any{}
	}
	project := ""
	if it.Project != nil {
		project = it.Project.ID
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.markUsed(it)
	id, at := stringField(p, "id"), it.EffectiveAt
	switch family, _ := splitType(it.Type); family {
	case "api_key":
		inv.applyKey(it, id, project, p)
	case "user":
		inv.applyUser(it.Type, id, project, p, at)
	case "invite":
		inv.applyInvite(it.Type, id, p, at)
	case "project":
		inv.applyProject(it.Type, id, p, at)
	case "service_account":
		inv.applyServiceAccount(it.Type, id, project, p, at)
	case "certificate", "certificates":
		inv.applyCertificate(it.Type, id, p, at)
	case "group":
		inv.applyGroup(it.Type, id, p, at)
	case "role":
		inv.applyRole(it.Type, id, p, at)
	case "rate_limit":
		if it.Type == "rate_limit.updated" {
			changes, _ := p["changes_requested"].(map[string]any)
			inv.setRateLimit(project, id, changes)
		} else if m := inv.rateLimits[project]; m != nil {
			delete(m, id)
		}
	case "tenant":
		inv.applyAdminKey(it, id, p)
	}
}

// splitType returns the part of typ before its first dot, and the rest.
func splitType(typ string) (string, string) {
	family, rest, _ := strings.Cut(typ, ".")
	return family, rest
}

// markUsed records the use of the API key that performed the event.
func (inv *inventory) markUsed(it auditItem) {
	if it.Actor == nil || it.Actor.APIKey == nil {
		return
	}
	k := inv.projectKeys[it.Actor.APIKey.ID]
	if k == nil {
		return
	}
	k.LastUsedAt = max(k.LastUsedAt, it.EffectiveAt)
	if k.Owner.User != nil {
		if u := inv.users[k.Owner.User.ID]; u != nil && (u.APIKeyLastUsedAt == nil || *u.APIKeyLastUsedAt < it.EffectiveAt) {
			at := it.EffectiveAt
			u.APIKeyLastUsedAt = &at
		}
	}
}

func (inv *inventory) applyKey(it auditItem, id, project string, p map[string]any) {
	switch it.Type {
	case "api_key.created":
		if project == "" || inv.projects[project] == nil {
			project = inv.defaultProject()
		}
		owner := ownerRef{typ: "user"}
		switch a := it.Actor; {
		case a != nil && a.Session != nil:
			owner.id = a.Session.User.ID
		case a != nil && a.APIKey != nil && a.APIKey.ServiceAccount != nil:
			owner = ownerRef{typ: "service_account", id: a.APIKey.ServiceAccount.ID}
		case a != nil && a.APIKey != nil && a.APIKey.User != nil:
			owner.id = a.APIKey.User.ID
		}
		name := "key-" + strings.TrimPrefix(id, "key_")
		if data, ok := p["data"].(map[string]any); ok && stringField(data, "name") != "" {
			name = stringField(data, "name")
		}
		inv.addProjectKey(id, name[:min(len(name), 14)], project, owner, it.EffectiveAt)
	case "api_key.updated":
		if k := inv.projectKeys[id]; k != nil {
			if changes, ok := p["changes_requested"].(map[string]any); ok && stringField(changes, "name") != "" {
				k.Name = stringField(changes, "name")
			}
		}
	case "api_key.deleted":
		delete(inv.projectKeys, id)
	}
}

func (inv *inventory) applyUser(typ, id, project string, p map[string]any, at int64) {
	role := ""
	if data, ok := p["data"].(map[string]any); ok {
		role = stringField(data, "role")
	}
	if changes, ok := p["changes_requested"].(map[string]any); ok {
		role = stringField(changes, "role")
	}
	switch typ {
	case "user.added":
		name := strings.TrimPrefix(id, "user-")
		inv.addUser(id, name, strings.ToLower(name)+"@"+inv.domain(), cmp.Or(role, "reader"), at)
		if project != "" {
			inv.addProjectUser(project, id, "member", at)
		}
	case "user.updated":
		if u := inv.users[id]; u != nil && role != "" && !inv.founders[id] {
			u.Role = role
		}
	case "user.deleted":
		inv.removeUser(id)
	}
}

func (inv *inventory) applyInvite(typ, id string, p map[string]any, at int64) {
	switch typ {
	case "invite.sent":
		if _, ok := inv.invites[id]; ok || id == "" {
			return
		}
		data, _ := p["data"].(map[string]any)
		inv.invites[id] = &invInvite{Object: "organization.invite", ID: id, Email: stringField(data, "email"), Role: cmp.Or(stringField(data, "role"), "reader"),
			Status: "pending", CreatedAt: at, ExpiresAt: at + int64(inviteLifetime.Seconds())}
	case "invite.accepted":
		if iv := inv.invites[id]; iv != nil {
			iv.Status, iv.AcceptedAt = "accepted", &at
		}
	case "invite.deleted":
		delete(inv.invites, id)
	}
}

func (inv *inventory) applyProject(typ, id string, p map[string]any, at int64) {
	switch typ {
	case "project.created":
		data, _ := p["data"].(map[string]any)
		inv.addProject(id, cmp.Or(stringField(data, "title"), id), at)
	case "project.updated":
		if pr := inv.projects[id]; pr != nil {
			if changes, ok := p["changes_requested"].(map[string]any); ok && stringField(changes, "title") != "" {
				pr.Name = stringField(changes, "title")
			}
		}
	case "project.archived":
		if pr := inv.projects[id]; pr != nil && pr.Status != "archived" && id != inv.defaultID {
			pr.Status, pr.ArchivedAt = "archived", &at
		}
	case "project.deleted":
		inv.removeProject(id)
	}
}

func (inv *inventory) applyServiceAccount(typ, id, project string, p map[string]any, at int64) {
	role := ""
	if data, ok := p["data"].(map[string]any); ok {
		role = stringField(data, "role")
	}
	if changes, ok := p["changes_requested"].(map[string]any); ok {
		role = stringField(changes, "role")
	}
	switch typ {
	case "service_account.created":
		if project == "" || inv.projects[project] == nil {
			project = inv.defaultProject()
		}
		inv.addServiceAccount(id, "sa-"+strings.TrimPrefix(id, "svc_acct_")[:6], cmp.Or(role, "member"), project, at)
	case "service_account.updated":
		if sa := inv.serviceAccts[id]; sa != nil && role != "" {
			sa.Role = role
		}
	case "service_account.deleted":
		inv.removeServiceAccount(id)
	}
}

func (inv *inventory) applyCertificate(typ, id string, p map[string]any, at int64) {
	switch typ {
	case "certificate.created":
		if _, ok := inv.certificates[id]; !ok && id != "" {
			inv.certificates[id] = &invCertificate{Object: "organization.certificate", ID: id, Name: stringField(p, "name"), CreatedAt: at,
				Details: invCertDetails{ValidAt: at, ExpiresAt: at + int64(certificateLifetime.Seconds())}}
		}
	case "certificate.updated":
		if c := inv.certificates[id]; c != nil && stringField(p, "name") != "" {
			c.Name = stringField(p, "name")
		}
	case "certificate.deleted":
		delete(inv.certificates, id)
	case "certificates.activated", "certificates.deactivated":
		certs, _ := p["certificates"].([]any)
		for _, c := range certs {
			m, _ := c.(map[string]any)
			if cert := inv.certificates[stringField(m, "id")]; cert != nil {
				cert.Active = typ == "certificates.activated"
			}
		}
	}
}

func (inv *inventory) applyGroup(typ, id string, p map[string]any, at int64) {
	switch typ {
	case "group.created":
		if _, ok := inv.groups[id]; !ok && id != "" {
			data, _ := p["data"].(map[string]any)
			inv.groups[id] = &invGroup{Object: "group", ID: id, Name: cmp.Or(stringField(data, "group_name"), id), CreatedAt: at, GroupType: "group"}
			inv.groupMembers[id] = true
		}
	case "group.updated":
		if g := inv.groups[id]; g != nil {
			if changes, ok := p["changes_requested"].(map[string]any); ok && stringField(changes, "group_name") != "" {
				g.Name = stringField(changes, "group_name")
			}
		}
	case "group.deleted":
		delete(inv.groups, id)
		delete(inv.assignments, id)
	}
}

func (inv *inventory) applyRole(typ, id string, p map[string]any, at int64) {
	switch typ {
	case "role.created":
		if _, ok := inv.roles[id]; !ok && id != "" {
			inv.roles[id] = &invRole{Object: "role", ID: id, Name: stringField(p, "role_name"), Description: "Custom role",
				Permissions: stringList(p["permissions"]), ResourceType: cmp.Or(stringField(p, "resource_type"), "api.organization")}
		}
	case "role.updated":
		r := inv.roles[id]
		changes, _ := p["changes_requested"].(map[string]any)
		if r == nil || changes == nil {
			return
		}
		if n := stringField(changes, "role_name"); n != "" {
			r.Name = n
		}
		if d := stringField(changes, "description"); d != "" {
			r.Description = d
		}
		perms := map[string]bool{}
		for _, x := range r.Permissions {
			perms[x] = true
		}
		for _, x := range stringList(changes["permissions_added"]) {
			perms[x] = true
		}
		for _, x := range stringList(changes["permissions_removed"]) {
			delete(perms, x)
		}
		r.Permissions = sortedKeys(perms)
	case "role.deleted":
		delete(inv.roles, id)
		for _, m := range inv.assignments {
			delete(m, id)
		}
	case "role.assignment.created":
		inv.assign(stringField(p, "principal_id"), stringField(p, "role_id"), at)
	case "role.assignment.deleted":
		if m := inv.assignments[stringField(p, "principal_id")]; m != nil {
			delete(m, stringField(p, "role_id"))
		}
	}
}

func (inv *inventory) applyAdminKey(it auditItem, id string, p map[string]any) {
	switch it.Type {
	case "tenant.admin_api_key.created":
		if _, ok := inv.adminKeys[id]; ok || id == "" {
			return
		}
		data, _ := p["data"].(map[string]any)
		owner := invKeyOwner{Type: "user", Object: "organization.user", Role: "owner"}
		if a := it.Actor; a != nil && a.Session != nil {
			owner = inv.adminOwner(a.Session.User.ID)
		}
		inv.adminKeys[id] = &invAdminKey{Object: "organization.admin_api_key", ID: id, Name: cmp.Or(stringField(data, "name"), "admin"),
			RedactedValue: "sk-admin-…" + id[max(len(id)-4, 0):], CreatedAt: it.EffectiveAt, Owner: owner}
	case "tenant.admin_api_key.deleted":
		delete(inv.adminKeys, id)
	}
}

// defaultProject is the id of the organization's default project.
func (inv *inventory) defaultProject() string { return inv.defaultID }

// domain is the organization's email domain (the first user's).
func (inv *inventory) domain() string {
	for _, id := range live(inv.users, nil) {
		if _, d, ok := strings.Cut(inv.users[id].Email, "@"); ok {
			return d
		}
	}
	return "example.com"
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
