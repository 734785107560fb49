package detections_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
	"github.com/auditpipe/auditpipe/pkg/inventory"
)

// invCase is one scenario of a posture rule: the objects a current
// snapshot (10 minutes ago, a baseline) listed, and exactly the findings
// the rule must produce.
type invCase struct {
	name    string
	objects []invObj
	want    []finding
}

// invObj is one object of the inventory.
type invObj struct {
	Kind    inventory.Kind
	ID      string
	Project string
	Object  obj
}

func unix(d time.Duration) int64 { return time.Now().Add(d).Unix() }

func projectKey(id string, created, lastUsed time.Duration, owner obj, access string) invObj {
	o := obj{"object": "organization.project.api_key", "id": id, "name": "k-" + id, "created_at": unix(created), "last_used_at": 0,
		"expires_at": nil, "owner": owner, "owner_project_access": access}
	if lastUsed != 0 {
		o["last_used_at"] = unix(lastUsed)
	}
	return invObj{Kind: inventory.KindProjectAPIKey, ID: id, Project: "proj_1", Object: o}
}

func adminKey(id string, created time.Duration, expires any) invObj {
	return invObj{Kind: inventory.KindAdminAPIKey, ID: id, Object: obj{"object": "organization.admin_api_key", "id": id, "name": "a-" + id,
		"created_at": unix(created), "last_used_at": unix(-time.Hour), "expires_at": expires,
		"owner": obj{"type": "user", "id": "user-1", "name": "Ada", "role": "owner"}}}
}

func userOwner(id string) obj {
	return obj{"type": "user", "user": obj{"id": id, "email": id + "@example.com"}}
}
func saOwner(id string) obj {
	return obj{"type": "service_account", "service_account": obj{"id": id, "name": id}}
}

func orgUser(id, role string) invObj {
	return invObj{Kind: inventory.KindUser, ID: id, Object: obj{"object": "organization.user", "id": id, "email": id + "@example.com", "role": role, "added_at": unix(-100 * day)}}
}

func project(id, status string) invObj {
	return invObj{Kind: inventory.KindProject, ID: id, Project: id, Object: obj{"object": "organization.project", "id": id, "name": "P " + id, "status": status, "created_at": unix(-100 * day)}}
}

var invCases = map[string][]invCase{
	"api_key_unused": {
		{
			name: "a project key unused for 100 days, an admin key never used in 200",
			objects: []invObj{
				projectKey("key_old", -300*day, -100*day, userOwner("user-1"), "active"),
				{Kind: inventory.KindAdminAPIKey, ID: "key_adm", Object: obj{"id": "key_adm", "name": "adm", "created_at": unix(-200 * day), "last_used_at": nil, "expires_at": nil, "owner": obj{"type": "user", "id": "user-1"}}},
			},
			want: []finding{
				{Severity: "MEDIUM", Entity: "key_adm", Details: map[string]string{"kind": "admin_api_key", "last_used_at": "never"}},
				{Severity: "LOW", Entity: "key_old", Details: map[string]string{"kind": "project_api_key", "days_unused": "100"}},
			},
		},
		{
			name: "used 10 days ago, created 5 days ago and never used",
			objects: []invObj{
				projectKey("key_used", -300*day, -10*day, userOwner("user-1"), "active"),
				projectKey("key_new", -5*day, 0, userOwner("user-1"), "active"),
			},
		},
	},
	"admin_api_key_long_lived": {
		{
			name:    "never expires, expires in 400 days",
			objects: []invObj{adminKey("key_forever", -10*day, nil), adminKey("key_long", -10*day, unix(400*day))},
			want: []finding{
				{Severity: "MEDIUM", Entity: "key_forever", Details: map[string]string{"expires_at": "never"}},
				{Severity: "LOW", Entity: "key_long"},
			},
		},
		{
			name:    "expires in 30 days; a project key without expiry",
			objects: []invObj{adminKey("key_short", -10*day, unix(30*day)), projectKey("key_p", -day, -time.Hour, userOwner("user-1"), "active")},
		},
	},
	"api_key_orphaned": {
		{
			name: "owner deleted, access inactive, service account gone",
			objects: []invObj{
				orgUser("user-1", "reader"),
				projectKey("key_gone", -day, -time.Hour, userOwner("user-gone"), "active"),
				projectKey("key_inactive", -day, -time.Hour, userOwner("user-1"), "inactive"),
				projectKey("key_sa", -day, -time.Hour, saOwner("svc_gone"), "active"),
			},
			want: []finding{
				{Severity: "HIGH", Entity: "key_gone", Details: map[string]string{"reason": "user gone", "owner_id": "user-gone"}},
				{Severity: "HIGH", Entity: "key_inactive", Details: map[string]string{"reason": "owner_project_access inactive"}},
				{Severity: "HIGH", Entity: "key_sa", Details: map[string]string{"reason": "service account gone"}},
			},
		},
		{
			name: "owners present",
			objects: []invObj{
				orgUser("user-1", "reader"),
				{Kind: inventory.KindProjectServiceAccount, ID: "svc_1", Project: "proj_1", Object: obj{"id": "svc_1", "name": "ci", "role": "member"}},
				projectKey("key_u", -day, -time.Hour, userOwner("user-1"), "active"),
				projectKey("key_s", -day, -time.Hour, saOwner("svc_1"), "active"),
			},
		},
	},
	"owners_beyond_threshold": {
		{
			name:    "four organization owners",
			objects: []invObj{orgUser("user-1", "owner"), orgUser("user-2", "owner"), orgUser("user-3", "owner"), orgUser("user-4", "owner"), orgUser("user-5", "reader")},
			want:    []finding{{Severity: "MEDIUM", Entity: "organization", Details: map[string]string{"owners": "4", "allowed": "3", "principals": "user-1,user-2,user-3,user-4"}}},
		},
		{
			name:    "three owners and readers",
			objects: []invObj{orgUser("user-1", "owner"), orgUser("user-2", "owner"), orgUser("user-3", "owner"), orgUser("user-4", "reader")},
		},
	},
	"invite_pending_too_long": {
		{
			name:    "pending for 10 days",
			objects: []invObj{{Kind: inventory.KindInvite, ID: "invite-1", Object: obj{"id": "invite-1", "email": "x@example.com", "role": "reader", "status": "pending", "created_at": unix(-10 * day)}}},
			want:    []finding{{Severity: "LOW", Entity: "invite-1", Details: map[string]string{"email": "x@example.com", "days_pending": "10"}}},
		},
		{
			name: "pending for 2 days, accepted after 30",
			objects: []invObj{
				{Kind: inventory.KindInvite, ID: "invite-1", Object: obj{"id": "invite-1", "status": "pending", "created_at": unix(-2 * day)}},
				{Kind: inventory.KindInvite, ID: "invite-2", Object: obj{"id": "invite-2", "status": "accepted", "created_at": unix(-30 * day)}},
			},
		},
	},
	"certificate_expiring": {
		{
			name: "expired while active, expiring in 10 days",
			objects: []invObj{
				{Kind: inventory.KindCertificate, ID: "cert_1", Object: obj{"id": "cert_1", "name": "a", "active": true, "certificate_details": obj{"valid_at": unix(-400 * day), "expires_at": unix(-day)}}},
				{Kind: inventory.KindCertificate, ID: "cert_2", Object: obj{"id": "cert_2", "name": "b", "active": true, "certificate_details": obj{"valid_at": unix(-300 * day), "expires_at": unix(10*day + time.Hour)}}},
			},
			want: []finding{
				{Severity: "HIGH", Entity: "cert_1", Details: map[string]string{"name": "a"}},
				{Severity: "MEDIUM", Entity: "cert_2", Details: map[string]string{"days_left": "10"}},
			},
		},
		{
			name:    "valid for 200 days",
			objects: []invObj{{Kind: inventory.KindCertificate, ID: "cert_1", Object: obj{"id": "cert_1", "active": true, "certificate_details": obj{"expires_at": unix(200 * day)}}}},
		},
	},
	"project_without_rate_limits": {
		{
			name:    "an active project without rate limits",
			objects: []invObj{project("proj_1", "active")},
			want:    []finding{{Severity: "LOW", Entity: "proj_1", Details: map[string]string{"rate_limits": "0"}}},
		},
		{
			name: "a limited project, an archived one without",
			objects: []invObj{
				project("proj_1", "active"), project("proj_2", "archived"),
				{Kind: inventory.KindProjectRateLimit, ID: "rl-gpt-4o", Project: "proj_1", Object: obj{"id": "rl-gpt-4o", "model": "gpt-4o", "max_requests_per_1_minute": 500}},
			},
		},
	},
}

// insertSnapshot writes one snapshot of ws: its records as the loader
// inserts them, through inventory.Diff (prev nil: a baseline), at at.
func (e *env) insertSnapshot(ws, id string, at time.Time, prev inventory.Hashes, kinds map[inventory.Kind]inventory.Listing) inventory.Hashes {
	e.t.Helper()
	for _, k := range inventory.Kinds() {
		if _, ok := kinds[k]; !ok {
			kinds[k] = inventory.Listing{}
		}
	}
	recs, next, err := inventory.Diff(prev, inventory.Snapshot{SourceID: "src", WorkspaceID: ws, ID: id, At: at, FinishedAt: at.Add(time.Second), Kinds: kinds})
	require.NoError(e.t, err)
	e.insertRecords(recs)
	return next
}

// insertRecords inserts records into the inventory tables, as the loader
// will.
func (e *env) insertRecords(recs []inventory.Record) {
	e.t.Helper()
	changes, snaps, err := openaisimtest.InventoryInserts(e.opts.Database, recs)
	require.NoError(e.t, err)
	require.NoError(e.t, chservertest.Exec(e.url, changes))
	require.NoError(e.t, chservertest.Exec(e.url, snaps))
}

func listingOf(objs []invObj) map[inventory.Kind]inventory.Listing {
	out := map[inventory.Kind]inventory.Listing{}
	for _, o := range objs {
		raw, _ := json.Marshal(o.Object)
		l := out[o.Kind]
		l.Objects = append(l.Objects, inventory.Object{ID: o.ID, ProjectID: o.Project, Raw: raw})
		out[o.Kind] = l
	}
	return out
}

func TestPostureRules(t *testing.T) {
	e := sharedEnv(t)
	for rule, cases := range invCases {
		t.Run(rule, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ws := e.ws(rule + "-" + itoa(i))
					e.insertSnapshot(ws, "s1", time.Now().Add(-10*time.Minute), nil, listingOf(c.objects))
					e.run(rule)
					requireFindings(t, c.want, e.findings(rule, ws))
				})
			}
		})
	}
	// A source whose last snapshot is older than lookback_minutes is not
	// judged: its inventory is not current.
	ws := e.ws("stale")
	e.insertSnapshot(ws, "s1", time.Now().Add(-3*time.Hour), nil, listingOf(invCases["api_key_unused"][0].objects))
	e.run("api_key_unused")
	require.Empty(t, e.findings("api_key_unused", ws))
}

// TestAuditGap snapshots the simulator's inventory,
// lets it change (through audited events, and one api_key.created dropped
// on purpose), snapshots it again, and loads both snapshots (through
// inventory.Diff, as the poller and loader will) and the whole audit log:
// audit_gap finds exactly the dropped key, named with its window.
func TestAuditGap(t *testing.T) {
	e := sharedEnv(t)
	t.Run("dropped event", func(t *testing.T) { auditGapScenario(t, e, true) })
	t.Run("every change explained", func(t *testing.T) { auditGapScenario(t, e, false) })
}

func auditGapScenario(t *testing.T, e *env, drop bool) {
	e.t = t
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 21, Backlog: 400})
	first, second := time.Now().Add(-3*time.Hour).Truncate(time.Second), time.Now().Add(-2*time.Hour).Truncate(time.Second)
	between := first.Add(30 * time.Minute)
	list := func() map[inventory.Kind]inventory.Listing {
		s := openaisimtest.ListInventory(t.Context(), http.DefaultClient, sim.URL()+"/v1", "sk-admin-test")
		for k, l := range s.Kinds {
			require.NoError(t, l.Err, "listing %s", k)
		}
		return s.Kinds
	}
	ws := e.ws(fmt.Sprintf("gap-%v", drop))
	hashes := e.insertSnapshot(ws, "s1", first, nil, list())
	for _, typ := range []string{"api_key.created", "api_key.deleted", "user.added", "user.deleted", "user.updated", "invite.sent", "invite.deleted",
		"project.created", "project.updated", "service_account.created", "service_account.deleted", "certificate.created",
		"certificates.deactivated", "group.created", "group.deleted", "role.created", "role.assignment.created", "rate_limit.updated"} {
		sim.GenerateSpec(openaisim.Spec{N: 1, Type: typ, EffectiveAt: between})
	}
	if !drop {
		e.insertSnapshot(ws, "s2", second, hashes, list())
		e.insertRaw(ws, sim.GroundTruth())
		e.run("audit_gap")
		requireFindings(t, nil, e.findings("audit_gap", ws))
		return
	}
	dropped := sim.DropAudit(openaisim.Spec{N: 1, Type: "api_key.created", EffectiveAt: between})
	require.Len(t, dropped, 1)
	var payload struct {
		Created struct {
			ID string `json:"id"`
		} `json:"api_key.created"`
	}
	require.NoError(t, json.Unmarshal(dropped[0].Raw, &payload))
	e.insertSnapshot(ws, "s2", second, hashes, list())
	e.insertRaw(ws, sim.GroundTruth())

	e.run("audit_gap")
	got := e.findings("audit_gap", ws)
	requireFindings(t, []finding{{
		Severity: "HIGH", Entity: "project_api_key/" + payload.Created.ID, WindowStart: first.UTC(),
		Details: map[string]string{"change": "appeared", "kind": "project_api_key", "object_id": payload.Created.ID,
			"expected_events": "api_key.created", "snapshot_id": "s2"},
	}}, got)
}
