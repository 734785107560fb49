package openaisim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// InventoryPathPrefix starts the path of every inventory listing the
// simulator serves (GET /v1/organization/…, docs/inventory.md).
const InventoryPathPrefix = "/v1/organization/"

// paging is how a listing pages: "last_id" ({data, first_id, last_id,
// has_more}; the next page is after=<last_id>) or "next" ({data, has_more,
// next}; after=<next>). Both order objects by id; after names the last
// object of the previous page, which keeps working when it was deleted in
// between.
type paging struct {
	style           string
	defLimit, limit int
}

var (
	pageLastID = paging{"last_id", 20, 100}
	pageNext   = paging{"next", 100, 1000}
)

// serveInventory answers GET InventoryPathPrefix… with the organization's
// objects, authenticated like the audit log (an admin key), and reports
// whether the path is an inventory listing.
func (s *Simulator) serveInventory(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, InventoryPathPrefix)
	if !ok || r.Method != http.MethodGet || r.URL.Path == ListPath {
		return false
	}
	objects, pg, single, found := s.inventoryObjects(strings.Split(rest, "/"), r.URL.Query())
	if !found {
		return false
	}
	if _, apiErr := s.authenticate(r); apiErr != nil {
		writeError(w, apiErr)
		return true
	}
	if single {
		if len(objects) == 0 {
			writeError(w, &apiError{status: http.StatusNotFound, message: fmt.Sprintf("No object found at %s.", r.URL.Path), typ: "invalid_request_error"})
			return true
		}
		writeList(w, objects[0].raw, time.Now())
		return true
	}
	body, apiErr := pageBody(objects, pg, r.URL.Query())
	if apiErr != nil {
		writeError(w, apiErr)
		return true
	}
	writeList(w, body, time.Now())
	return true
}

// invObject is one listed object: its id (the paging key) and JSON.
type invObject struct {
	id  string
	raw []byte
}

// inventoryObjects returns the objects of the listing at path (split at
// "/", below /v1/organization/), how it pages, whether it is a single
// object, and whether such a listing exists.
func (s *Simulator) inventoryObjects(path []string, q map[string][]string) (objs []invObject, pg paging, single, found bool) {
	inv := s.gen.inv
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	add := func(id string, v any) {
		raw, err := json.Marshal(v)
		if err == nil {
			objs = append(objs, invObject{id, raw})
		}
	}
	switch {
	case match(path, "admin_api_keys"):
		for _, k := range sortedValues(inv.adminKeys) {
			add(k.ID, k)
		}
		return objs, pageLastID, false, true
	case match(path, "projects"):
		archived := len(q["include_archived"]) > 0 && q["include_archived"][0] == "true"
		for _, p := range sortedValues(inv.projects) {
			if archived || p.Status == "active" {
				add(p.ID, p)
			}
		}
		return objs, pageLastID, false, true
	case match(path, "users"):
		for _, u := range sortedValues(inv.users) {
			add(u.ID, u)
		}
		return objs, pageLastID, false, true
	case match(path, "invites"):
		for _, iv := range sortedValues(inv.invites) {
			add(iv.ID, iv)
		}
		return objs, pageLastID, false, true
	case match(path, "groups"):
		for _, g := range sortedValues(inv.groups) {
			add(g.ID, g)
		}
		return objs, pageNext, false, true
	case match(path, "roles"):
		for _, r := range sortedValues(inv.roles) {
			add(r.ID, r)
		}
		return objs, pageNext, false, true
	case match(path, "certificates"):
		for _, c := range sortedValues(inv.certificates) {
			add(c.ID, c)
		}
		return objs, pageLastID, false, true
	case match(path, "spend_limit"):
		add("organization", inv.spendLimit)
		return objs, paging{}, true, true
	case match(path, "data_retention"):
		add("organization", inv.dataRetention)
		return objs, paging{}, true, true
	case match(path, "users", "*", "roles"), match(path, "groups", "*", "roles"):
		if (path[0] == "users" && inv.users[path[1]] == nil) || (path[0] == "groups" && inv.groups[path[1]] == nil) {
			return nil, pageNext, false, false
		}
		for _, id := range sortedMapKeys(inv.assignments[path[1]]) {
			add(id, inv.assignmentView(path[0], path[1], id))
		}
		return objs, pageNext, false, true
	case len(path) == 3 && path[0] == "projects":
		pg, single, found := inv.projectObjects(path[1], path[2], add)
		return objs, pg, single, found
	}
	return nil, paging{}, false, false
}

// projectObjects lists what is scoped to project id; what is a listing name
// such as api_keys.
func (inv *inventory) projectObjects(id, what string, collect func(string, any)) (paging, bool, bool) {
	if inv.projects[id] == nil {
		return paging{}, false, false
	}
	switch what {
	case "api_keys":
		for _, k := range sortedValues(inv.projectKeys) {
			if k.project == id {
				collect(k.ID, k)
			}
		}
	case "service_accounts":
		for _, sa := range sortedValues(inv.serviceAccts) {
			if sa.project == id {
				collect(sa.ID, sa)
			}
		}
	case "users":
		for _, u := range sortedValues(inv.projectUsers[id]) {
			collect(u.ID, u)
		}
	case "rate_limits":
		for _, rl := range sortedValues(inv.rateLimits[id]) {
			collect(rl.ID, rl)
		}
	case "spend_limit":
		return paging{}, true, true // no project has a spend limit of its own: 404
	case "data_retention":
		collect(id, invDataRetention{Object: "project.data_retention", Type: inv.dataRetention.Type})
		return paging{}, true, true
	default:
		return paging{}, false, false
	}
	return pageLastID, false, true
}

// assignmentView is a role as the role-assignment listings return it.
func (inv *inventory) assignmentView(scope, principal, role string) any {
	r := inv.roles[role]
	ptype := "user"
	if scope == "groups" {
		ptype = "group"
	}
	at := inv.assignments[principal][role]
	return map[string]any{
		"object": "role", "id": role, "name": r.Name, "description": r.Description, "permissions": r.Permissions,
		"predefined_role": r.PredefinedRole, "resource_type": r.ResourceType, "created_at": at, "updated_at": at,
		"assignment_sources": []map[string]string{{"principal_id": principal, "principal_type": ptype}},
	}
}

// match reports whether path has the shape of want ("*": any segment).
func match(path []string, want ...string) bool {
	if len(path) != len(want) {
		return false
	}
	for i, w := range want {
		if w != "*" && path[i] != w {
			return false
		}
	}
	return true
}

// pageBody renders one page of objs after q's "after" with q's "limit".
func pageBody(objs []invObject, pg paging, q map[string][]string) ([]byte, *apiError) {
	limit := pg.defLimit
	if v := first(q["limit"]); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return nil, &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Invalid type for 'limit': expected an integer, but got %q instead.", v), typ: "invalid_request_error", param: "limit", code: "invalid_type"}
		case n < 1:
			return nil, &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %d instead.", n), typ: "invalid_request_error", param: "limit", code: "integer_below_min_value"}
		case n > pg.limit:
			return nil, &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Invalid 'limit': integer above maximum value. Expected a value <= %d, but got %d instead.", pg.limit, n), typ: "invalid_request_error", param: "limit", code: "integer_above_max_value"}
		}
		limit = n
	}
	start := 0
	if after := first(q["after"]); after != "" {
		start, _ = slices.BinarySearchFunc(objs, after, func(o invObject, id string) int { return strings.Compare(o.id, id) })
		if start < len(objs) && objs[start].id == after {
			start++
		}
	}
	end := min(start+limit, len(objs))
	page := objs[start:end]
	var b bytes.Buffer
	b.WriteString(`{"object":"list","data":[`)
	for i, o := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(o.raw)
	}
	b.WriteString(`]`)
	var firstID, lastID any
	if len(page) > 0 {
		firstID, lastID = page[0].id, page[len(page)-1].id
	}
	more := end < len(objs)
	if pg.style == "next" {
		next := any(nil)
		if more {
			next = lastID
		}
		b.WriteString(`,"next":`)
		writeJSON(&b, next)
	} else {
		b.WriteString(`,"first_id":`)
		writeJSON(&b, firstID)
		b.WriteString(`,"last_id":`)
		writeJSON(&b, lastID)
	}
	b.WriteString(`,"has_more":` + strconv.FormatBool(more) + `}`)
	return b.Bytes(), nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
