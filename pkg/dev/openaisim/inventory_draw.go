package openaisim

// Draws of the generator that keep the audit log consistent with the
// inventory: updates and deletions name objects that exist, creations name
// new ones. Each falls back to the organization's static objects when the
// inventory has none left (the event then changes nothing).

func (g *generator) liveIDs(ids func(inv *inventory) []string) []string {
	g.inv.mu.RLock()
	defer g.inv.mu.RUnlock()
	return ids(g.inv)
}

func (g *generator) liveKey() string {
	if id := pickLive(g.r, g.liveIDs(func(inv *inventory) []string { return live(inv.projectKeys, nil) })); id != "" {
		return id
	}
	return g.keyID()
}

// liveUser draws a user that may be changed: not one of the founding
// owners (attack scenarios act as them).
func (g *generator) liveUser() string {
	id := pickLive(g.r, g.liveIDs(func(inv *inventory) []string {
		return live(inv.users, func(u *invUser) bool { return !inv.founders[u.ID] })
	}))
	if id != "" {
		return id
	}
	return g.userID()
}

// absentUser draws a user of the organization that the inventory no longer
// holds (someone who comes back), else a new one.
func (g *generator) absentUser() string {
	var gone []string
	g.inv.mu.RLock()
	for _, u := range g.org.users {
		if g.inv.users[u.id] == nil {
			gone = append(gone, u.id)
		}
	}
	g.inv.mu.RUnlock()
	if id := pickLive(g.r, gone); id != "" {
		return id
	}
	return "user-" + randAlnum(g.r, 24)
}

func (g *generator) pendingInvite() string {
	if id := pickLive(g.r, g.liveIDs(func(inv *inventory) []string {
		return live(inv.invites, func(i *invInvite) bool { return i.Status == "pending" })
	})); id != "" {
		return id
	}
	return "invite-" + randAlnum(g.r, 24)
}

// liveProject draws an active project other than the default one. With
// retire (an archival or deletion) it keeps at least three such projects:
// below that it names a project that does not exist (the event changes
// nothing), so that the organization does not run out of projects.
func (g *generator) liveProject(retire bool) string {
	ids := g.liveIDs(func(inv *inventory) []string {
		return live(inv.projects, func(p *invProject) bool { return p.ID != inv.defaultID && p.Status == "active" })
	})
	if retire && len(ids) <= 3 {
		return "proj_" + randAlnum(g.r, 24)
	}
	if id := pickLive(g.r, ids); id != "" {
		return id
	}
	return g.projectID()
}

func (g *generator) liveServiceAccount() string {
	if id := pickLive(g.r, g.liveIDs(func(inv *inventory) []string { return live(inv.serviceAccts, nil) })); id != "" {
		return id
	}
	return g.saID()
}

func (g *generator) liveCertificate() obj {
	g.inv.mu.RLock()
	ids := live(g.inv.certificates, nil)
	var c obj
	if id := pickLive(g.r, ids); id != "" {
		c = obj{"id": id, "name": g.inv.certificates[id].Name}
	}
	g.inv.mu.RUnlock()
	if c != nil {
		return c
	}
	return g.named(g.org.certificates)
}

func (g *generator) liveGroup() string {
	if id := pickLive(g.r, g.liveIDs(func(inv *inventory) []string { return live(inv.groups, nil) })); id != "" {
		return id
	}
	return g.pick(g.org.groups)
}

func (g *generator) liveRole() string {
	if id := pickLive(g.r, g.liveIDs(func(inv *inventory) []string { return live(inv.roles, nil) })); id != "" {
		return id
	}
	return g.pick(g.org.roles)
}

// liveAssignment draws an existing role assignment (principal, role), or
// ("", "") when there is none.
func (g *generator) liveAssignment() (string, string) {
	g.inv.mu.RLock()
	defer g.inv.mu.RUnlock()
	var pairs [][2]string
	for _, p := range sortedMapKeys(g.inv.assignments) {
		for _, r := range sortedMapKeys(g.inv.assignments[p]) {
			pairs = append(pairs, [2]string{p, r})
		}
	}
	if len(pairs) == 0 {
		return "", ""
	}
	pr := pairs[g.r.IntN(len(pairs))]
	return pr[0], pr[1]
}

// principal draws a live user or group to grant a role to.
func (g *generator) principal() (string, string) {
	if g.r.Float64() < 0.3 {
		return g.liveGroup(), "group"
	}
	return g.liveUser(), "user"
}

// activeProject draws an active project of the inventory (the project an
// event happens in), else one of the organization's.
func (g *generator) activeProject() *Project {
	g.inv.mu.RLock()
	ids := live(g.inv.projects, func(p *invProject) bool { return p.Status == "active" })
	var out *Project
	if id := pickLive(g.r, ids); id != "" {
		out = &Project{ID: id, Name: g.inv.projects[id].Name}
	}
	g.inv.mu.RUnlock()
	if out != nil {
		return out
	}
	p := g.org.projects[g.r.IntN(len(g.org.projects))]
	return &Project{ID: p.id, Name: p.name}
}

// liveKeyActor draws an API-key actor from the inventory's project keys
// whose owner still has access (a key acts in its own project), or nil when
// there is none.
func (g *generator) liveKeyActor() (*Actor, *Project) {
	g.inv.mu.RLock()
	defer g.inv.mu.RUnlock()
	ids := live(g.inv.projectKeys, func(k *invProjectKey) bool {
		p := g.inv.projects[k.project]
		return k.OwnerProjectAccess == "active" && p != nil && p.Status == "active"
	})
	id := pickLive(g.r, ids)
	if id == "" {
		return nil, nil
	}
	k := g.inv.projectKeys[id]
	a := &APIKey{ID: k.ID, Type: k.Owner.Type}
	if u := k.Owner.User; u != nil {
		a.User = &User{ID: u.ID, Email: u.Email}
	}
	if sa := k.Owner.ServiceAccount; sa != nil {
		a.ServiceAccount = &ServiceAccount{ID: sa.ID}
	}
	p := g.inv.projects[k.project]
	return &Actor{Type: "api_key", APIKey: a}, &Project{ID: p.ID, Name: p.Name}
}
