package openaisim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
	"github.com/auditpipe/auditpipe/pkg/inventory"
)

// lifecycle replays the audit log (oldest first) and returns, per kind, the
// ids the log says exist at the end: created and not deleted since, and
// (for project-scoped objects) in a project that is still active.
func lifecycle(evs []openaisim.Event, kinds map[string][2]string, active map[string]bool) map[string]map[string]bool {
	slices.Reverse(evs) // GroundTruth is newest first
	out := map[string]map[string]bool{}
	for _, ev := range evs {
		var fields map[string]json.RawMessage
		_ = json.Unmarshal(ev.Raw, &fields)
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(fields[ev.Type], &p)
		for family, verbs := range kinds {
			if out[family] == nil {
				out[family] = map[string]bool{}
			}
			switch ev.Type {
			case family + "." + verbs[0]:
				if (family == "api_key" || family == "service_account") && !active[ev.ProjectID] {
					continue
				}
				out[family][p.ID] = true
			case family + "." + verbs[1]:
				delete(out[family], p.ID)
			}
		}
	}
	return out
}

func listed(s inventory.Snapshot, k inventory.Kind) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, o := range s.Kinds[k].Objects {
		out[o.ID] = o.Raw
	}
	return out
}

// TestInventoryFollowsTheAuditLog checks the simulator's inventory against
// its own audit log: a key, certificate or invitation the log created and
// never deleted is listed, one it deleted is not; a user the log deleted is
// gone and its keys are left inactive; every key that acted is marked used.
func TestInventoryFollowsTheAuditLog(t *testing.T) {
	t.Parallel()
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 5, Backlog: 1500, BacklogSpan: 72 * time.Hour})
	// Whatever the backlog left, one of each creation last.
	for _, typ := range []string{"api_key.created", "certificate.created", "group.created", "role.created", "service_account.created"} {
		sim.GenerateSpec(openaisim.Spec{N: 1, Type: typ})
	}
	snap := openaisimtest.ListInventory(t.Context(), http.DefaultClient, sim.URL()+"/v1", adminKey)
	for k, l := range snap.Kinds {
		require.NoError(t, l.Err, "listing %s", k)
	}
	truth := sim.GroundTruth()
	active := map[string]bool{}
	for _, o := range snap.Kinds[inventory.KindProject].Objects {
		var p struct {
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal(o.Raw, &p))
		active[o.ID] = p.Status == "active"
	}
	life := lifecycle(slices.Clone(truth), map[string][2]string{
		"api_key": {"created", "deleted"}, "certificate": {"created", "deleted"}, "group": {"created", "deleted"},
		"role": {"created", "deleted"}, "service_account": {"created", "deleted"},
	}, active)
	keys, certs := listed(snap, inventory.KindProjectAPIKey), listed(snap, inventory.KindCertificate)
	groups, roles, sas := listed(snap, inventory.KindGroup), listed(snap, inventory.KindRole), listed(snap, inventory.KindProjectServiceAccount)
	for family, got := range map[string]map[string]json.RawMessage{"api_key": keys, "certificate": certs, "group": groups, "role": roles, "service_account": sas} {
		require.NotEmpty(t, life[family], family)
		for id := range life[family] {
			_, ok := got[id]
			assert.True(t, ok, "%s %s created in the audit log and never deleted is listed", family, id)
		}
	}
	var deletedKeys, deletedUsers int
	for _, ev := range truth {
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(ev.Raw, &fields))
		var p struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(fields[ev.Type], &p)
		switch ev.Type {
		case "api_key.deleted":
			if !life["api_key"][p.ID] {
				_, ok := keys[p.ID]
				assert.False(t, ok, "deleted key %s is not listed", p.ID)
				deletedKeys++
			}
		case "user.deleted":
			if _, ok := listed(snap, inventory.KindUser)[p.ID]; !ok {
				deletedUsers++
			}
		}
	}
	assert.Positive(t, deletedKeys)
	assert.Positive(t, deletedUsers, "deleted users are gone")

	var used int
	owners := map[string]string{} // user id → one of its keys
	for id, raw := range keys {
		var k struct {
			LastUsedAt int64  `json:"last_used_at"`
			Access     string `json:"owner_project_access"`
			Owner      struct {
				Type string `json:"type"`
				User *struct {
					ID string `json:"id"`
				} `json:"user"`
			} `json:"owner"`
		}
		require.NoError(t, json.Unmarshal(raw, &k))
		assert.Contains(t, []string{"user", "service_account"}, k.Owner.Type)
		if k.LastUsedAt > 0 {
			used++
		}
		if k.Owner.User != nil && k.Access == "active" {
			owners[k.Owner.User.ID] = id
		}
	}
	assert.Positive(t, used)
	for _, ev := range truth {
		var it openaisim.AuditLog
		require.NoError(t, json.Unmarshal(ev.Raw, &it))
		if it.Actor == nil || it.Actor.APIKey == nil {
			continue
		}
		if raw, ok := keys[it.Actor.APIKey.ID]; ok {
			var k struct {
				LastUsedAt int64 `json:"last_used_at"`
			}
			require.NoError(t, json.Unmarshal(raw, &k))
			assert.GreaterOrEqual(t, k.LastUsedAt, it.EffectiveAt, "key %s is marked used by its events", it.Actor.APIKey.ID)
		}
	}

	// A user deleted through the audit log is gone; the key stays, with
	// owner_project_access inactive.
	users := listed(snap, inventory.KindUser)
	var victim, victimKey string
	for u, k := range owners {
		var usr struct {
			Role string `json:"role"`
		}
		if raw, ok := users[u]; ok && json.Unmarshal(raw, &usr) == nil && usr.Role != "owner" {
			victim, victimKey = u, k
			break
		}
	}
	require.NotEmpty(t, victim, "a reader owning a key")
	_, err := sim.AddRaw([]byte(`{"object":"organization.audit_log","id":"audit_log-deleteuser000000000000000","type":"user.deleted","effective_at":` +
		strconv.FormatInt(time.Now().Unix(), 10) + `,"user.deleted":{"id":"` + victim + `"}}`))
	require.NoError(t, err)
	after := openaisimtest.ListInventory(t.Context(), http.DefaultClient, sim.URL()+"/v1", adminKey)
	_, still := listed(after, inventory.KindUser)[victim]
	assert.False(t, still, "the deleted user is not listed")
	var k struct {
		Access string `json:"owner_project_access"`
	}
	require.NoError(t, json.Unmarshal(listed(after, inventory.KindProjectAPIKey)[victimKey], &k))
	assert.Equal(t, "inactive", k.Access)

	// One request per listing page: every listing fits in one page here.
	projects := 0
	for _, o := range snap.Kinds[inventory.KindProject].Objects {
		if !json.Valid(o.Raw) {
			t.Fatal(o.ID)
		}
		var p struct {
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal(o.Raw, &p))
		if p.Status == "active" {
			projects++
		}
	}
	assert.Equal(t, inventory.RequestsPerSnapshot(projects, len(snap.Kinds[inventory.KindUser].Objects), len(snap.Kinds[inventory.KindGroup].Objects)), snap.Requests)
	var inventoryRequests int
	for _, r := range sim.Requests() {
		if r.Seq > snap.Requests {
			break
		}
		if r.Path != openaisim.ListPath {
			inventoryRequests++
			assert.Contains(t, []int{http.StatusOK, http.StatusNotFound}, r.Status, r.Path)
		}
	}
	assert.Equal(t, snap.Requests, inventoryRequests, "the simulator's request log counts the same")
}

// TestDropAudit: a dropped event changes the inventory but is never served.
func TestDropAudit(t *testing.T) {
	t.Parallel()
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 2, Backlog: 200})
	dropped := sim.DropAudit(openaisim.Spec{N: 1, Type: "api_key.created"})
	require.Len(t, dropped, 1)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(dropped[0].Raw, &fields))
	var p struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(fields["api_key.created"], &p))
	snap := openaisimtest.ListInventory(t.Context(), http.DefaultClient, sim.URL()+"/v1", adminKey)
	_, ok := listed(snap, inventory.KindProjectAPIKey)[p.ID]
	assert.True(t, ok, "the key exists")
	for _, ev := range sim.GroundTruth() {
		assert.NotEqual(t, dropped[0].ID, ev.ID, "its event is not in the audit log")
	}
	assert.Equal(t, dropped, sim.Dropped())

	// DropRate drops a share of the live events that change the inventory.
	rated := openaisimtest.Start(t, openaisim.Config{Seed: 3, DropRate: 1})
	evs := rated.GenerateSpec(openaisim.Spec{N: 5, Type: "user.deleted"})
	assert.Empty(t, evs)
	assert.Len(t, rated.Dropped(), 5)
	assert.Len(t, rated.GenerateSpec(openaisim.Spec{N: 3, Type: "login.succeeded"}), 3, "logins change nothing and are never dropped")
}

// TestInventoryPaging walks a listing two objects at a time, in both
// paging styles, and checks the limits and the authentication.
func TestInventoryPaging(t *testing.T) {
	t.Parallel()
	sim, err := openaisim.New(openaisim.Config{Seed: 4}, nil)
	require.NoError(t, err)
	h := sim.Handler()
	fetch := func(path, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for _, c := range []struct{ path, cursor string }{{"/v1/organization/users", "last_id"}, {"/v1/organization/groups", "next"}} {
		var all, walked []string
		w := fetch(c.path+"?limit=100", adminKey)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		var full struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &full))
		for _, d := range full.Data {
			all = append(all, d.ID)
		}
		after := ""
		for range 50 {
			w := fetch(c.path+"?limit=2&after="+after, adminKey)
			require.Equal(t, http.StatusOK, w.Code)
			var pg map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &pg))
			var data []struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(pg["data"], &data))
			for _, d := range data {
				walked = append(walked, d.ID)
			}
			var more bool
			require.NoError(t, json.Unmarshal(pg["has_more"], &more))
			if !more {
				break
			}
			require.NoError(t, json.Unmarshal(pg[c.cursor], &after))
		}
		assert.Equal(t, all, walked, c.path)
		assert.Greater(t, len(all), 2)
	}
	assert.Equal(t, http.StatusBadRequest, fetch("/v1/organization/users?limit=101", adminKey).Code)
	assert.Equal(t, http.StatusBadRequest, fetch("/v1/organization/users?limit=0", adminKey).Code)
	assert.Equal(t, http.StatusUnauthorized, fetch("/v1/organization/users", "").Code)
	assert.Equal(t, http.StatusUnauthorized, fetch("/v1/organization/users", "sk-proj-x").Code)
	assert.Equal(t, http.StatusNotFound, fetch("/v1/organization/widgets", adminKey).Code)
	assert.Equal(t, http.StatusNotFound, fetch("/v1/organization/projects/proj_nope/api_keys", adminKey).Code)
}
