package inventory_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/inventory"
)

func TestHashIgnoresKeyOrderAndVolatileFields(t *testing.T) {
	a, err := inventory.Hash(inventory.KindProjectAPIKey, json.RawMessage(`{"id":"key_1","name":"ci","last_used_at":1,"owner":{"type":"user","user":{"id":"u","role":"owner"}}}`))
	require.NoError(t, err)
	b, err := inventory.Hash(inventory.KindProjectAPIKey, json.RawMessage(`{ "owner": {"user": {"role":"owner","id":"u"},"type":"user"}, "last_used_at": 99, "name":"ci", "id":"key_1" }`))
	require.NoError(t, err)
	assert.Equal(t, a, b, "key order, white space and last_used_at do not change the hash")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, a)
	c, err := inventory.Hash(inventory.KindProjectAPIKey, json.RawMessage(`{"id":"key_1","name":"ci2","last_used_at":1,"owner":{"type":"user","user":{"id":"u","role":"owner"}}}`))
	require.NoError(t, err)
	assert.NotEqual(t, a, c, "a renamed key hashes differently")
	// last_used_at is volatile for keys only: a project's fields all count.
	p1, _ := inventory.Hash(inventory.KindProject, json.RawMessage(`{"id":"p","last_used_at":1}`))
	p2, _ := inventory.Hash(inventory.KindProject, json.RawMessage(`{"id":"p","last_used_at":2}`))
	assert.NotEqual(t, p1, p2)
	// Numbers are kept as written: 1.0 and 1 differ (the API's own output
	// is stable, so this never makes a spurious change).
	n1, _ := inventory.Hash(inventory.KindProject, json.RawMessage(`{"n":12345678901234567890}`))
	n2, _ := inventory.Hash(inventory.KindProject, json.RawMessage(`{"n":12345678901234567891}`))
	assert.NotEqual(t, n1, n2, "big integers are not rounded through float64")
	for _, bad := range []string{``, `{`, `{"a":1} {"b":2}`, `nope`} {
		_, err := inventory.Hash(inventory.KindProject, json.RawMessage(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestObjectID(t *testing.T) {
	for _, c := range []struct {
		kind  inventory.Kind
		scope string
		raw   string
		want  string
		err   bool
	}{
		{inventory.KindProjectAPIKey, "proj_1", `{"id":"key_1"}`, "key_1", false},
		{inventory.KindSpendLimit, "", `{"object":"organization.spend_limit"}`, "organization", false},
		{inventory.KindProjectDataRetention, "proj_1", `{"type":"zero_data_retention"}`, "proj_1", false},
		{inventory.KindRoleAssignment, "user-1", `{"id":"role_1"}`, "user-1/role_1", false},
		{inventory.KindProjectRateLimit, "proj_1", `{"id":"rl-gpt-4o"}`, "proj_1/rl-gpt-4o", false},
		{inventory.KindProjectUser, "proj_1", `{"id":"user-1"}`, "proj_1/user-1", false},
		{inventory.KindRoleAssignment, "", `{"id":"role_1"}`, "", true},
		{inventory.KindUser, "", `{"email":"x"}`, "", true},
		{inventory.KindUser, "", `[]`, "", true},
	} {
		got, err := inventory.ObjectID(c.kind, c.scope, json.RawMessage(c.raw))
		if c.err {
			assert.Error(t, err, "%s %s", c.kind, c.raw)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, c.want, got)
	}
}

func obj(id, body string) inventory.Object {
	return inventory.Object{ID: id, Raw: json.RawMessage(body)}
}

// change is what the tests compare of a record.
type change struct {
	Kind inventory.Kind
	ID   string
	Op   inventory.Op
}

func changes(recs []inventory.Record) []change {
	var out []change
	for _, r := range recs {
		out = append(out, change{r.Kind, r.ObjectID, r.Op})
	}
	return out
}

func TestDiff(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	all := func(over map[inventory.Kind]inventory.Listing) map[inventory.Kind]inventory.Listing {
		m := map[inventory.Kind]inventory.Listing{}
		for _, k := range inventory.Kinds() {
			m[k] = inventory.Listing{}
		}
		for k, l := range over {
			m[k] = l
		}
		return m
	}
	snap := func(id string, baseline bool, kinds map[inventory.Kind]inventory.Listing) inventory.Snapshot {
		return inventory.Snapshot{SourceID: "src", WorkspaceID: "ws", ID: id, At: at, FinishedAt: at.Add(time.Second), Baseline: baseline, Requests: 3, Kinds: kinds}
	}
	first := snap("s1", false, all(map[inventory.Kind]inventory.Listing{
		inventory.KindUser:          {Objects: []inventory.Object{obj("user-b", `{"id":"user-b","role":"reader"}`), obj("user-a", `{"id":"user-a","role":"owner"}`)}},
		inventory.KindProjectAPIKey: {Objects: []inventory.Object{{ID: "key_1", ProjectID: "proj_1", Raw: json.RawMessage(`{"id":"key_1","last_used_at":1}`)}}},
	}))
	recs, h1, err := inventory.Diff(nil, first)
	require.NoError(t, err)
	assert.Equal(t, []change{
		{inventory.KindUser, "user-a", inventory.OpUpsert}, {inventory.KindUser, "user-b", inventory.OpUpsert},
		{inventory.KindProjectAPIKey, "key_1", inventory.OpUpsert}, {inventory.KindSnapshot, "s1", inventory.OpSnapshot},
	}, changes(recs), "the first snapshot writes everything, sorted by kind and id")
	for _, r := range recs {
		assert.True(t, r.Baseline, "without previous hashes every record is a baseline")
		require.NoError(t, r.Validate())
		assert.Equal(t, "src/"+string(r.Kind)+"/"+r.ObjectID, r.Key())
	}
	assert.Equal(t, "proj_1", recs[2].ProjectID)

	second := snap("s2", false, all(map[inventory.Kind]inventory.Listing{
		inventory.KindUser:          {Objects: []inventory.Object{obj("user-a", `{"role":"owner","id":"user-a"}`), obj("user-c", `{"id":"user-c","role":"reader"}`)}},
		inventory.KindProjectAPIKey: {Objects: []inventory.Object{{ID: "key_1", ProjectID: "proj_1", Raw: json.RawMessage(`{"id":"key_1","last_used_at":50}`)}}},
	}))
	recs, h2, err := inventory.Diff(h1, second)
	require.NoError(t, err)
	assert.Equal(t, []change{
		{inventory.KindUser, "user-c", inventory.OpUpsert}, {inventory.KindUser, "user-b", inventory.OpDelete},
		{inventory.KindSnapshot, "s2", inventory.OpSnapshot},
	}, changes(recs), "user-c appeared, user-b disappeared; a reordered user-a and a used key are unchanged")
	assert.False(t, recs[0].Baseline)
	assert.Equal(t, h1["user/user-b"].Hash, recs[1].Hash, "a delete carries the last version's hash")
	assert.JSONEq(t, `null`, string(recs[1].Object))
	var sum inventory.Summary
	require.NoError(t, json.Unmarshal(recs[2].Object, &sum))
	assert.True(t, sum.Complete)
	assert.Equal(t, 2, sum.Counts[inventory.KindUser])
	assert.Equal(t, 3, sum.Requests)

	third := snap("s3", false, all(map[inventory.Kind]inventory.Listing{
		inventory.KindUser:          {Err: errors.New("GET /organization/users: 503")},
		inventory.KindProjectAPIKey: {Objects: []inventory.Object{{ID: "key_1", ProjectID: "proj_1", Raw: json.RawMessage(`{"id":"key_1","name":"renamed"}`)}}},
	}))
	recs, h3, err := inventory.Diff(h2, third)
	require.NoError(t, err)
	assert.Equal(t, []change{{inventory.KindProjectAPIKey, "key_1", inventory.OpUpsert}, {inventory.KindSnapshot, "s3", inventory.OpSnapshot}}, changes(recs),
		"a failed listing writes nothing for its kind (no false deletes)")
	assert.Equal(t, h2["user/user-a"], h3["user/user-a"], "and keeps its previous hashes")
	sum = inventory.Summary{}
	require.NoError(t, json.Unmarshal(recs[1].Object, &sum))
	assert.False(t, sum.Complete)
	assert.Equal(t, "GET /organization/users: 503", sum.Failed[inventory.KindUser])
	assert.NotContains(t, sum.Counts, inventory.KindUser)

	baseline := snap("s4", true, all(map[inventory.Kind]inventory.Listing{
		inventory.KindUser: {Objects: []inventory.Object{obj("user-a", `{"id":"user-a","role":"owner"}`)}},
	}))
	recs, _, err = inventory.Diff(h3, baseline)
	require.NoError(t, err)
	assert.Equal(t, []change{
		{inventory.KindUser, "user-a", inventory.OpUpsert}, {inventory.KindUser, "user-c", inventory.OpDelete},
		{inventory.KindProjectAPIKey, "key_1", inventory.OpDelete}, {inventory.KindSnapshot, "s4", inventory.OpSnapshot},
	}, changes(recs), "a baseline writes every object, and the deletes")
	for _, r := range recs {
		assert.True(t, r.Baseline)
	}

	_, _, err = inventory.Diff(h3, snap("s5", false, all(map[inventory.Kind]inventory.Listing{
		inventory.KindUser: {Objects: []inventory.Object{obj("user-a", `{}`), obj("user-a", `{}`)}},
	})))
	assert.ErrorContains(t, err, "listed twice")
	_, _, err = inventory.Diff(h3, snap("s6", false, all(map[inventory.Kind]inventory.Listing{
		inventory.KindUser: {Objects: []inventory.Object{obj("user-a", `{`)}},
	})))
	assert.ErrorContains(t, err, "user user-a")
}

func TestRecordValidate(t *testing.T) {
	ok := inventory.Record{SourceID: "s", SnapshotID: "x", SnapshotAt: time.Unix(1, 0), Kind: inventory.KindUser, ObjectID: "u", Op: inventory.OpUpsert, Object: json.RawMessage(`{}`)}
	require.NoError(t, ok.Validate())
	for name, mut := range map[string]func(r *inventory.Record){
		"no source":          func(r *inventory.Record) { r.SourceID = "" },
		"no time":            func(r *inventory.Record) { r.SnapshotAt = time.Time{} },
		"unknown kind":       func(r *inventory.Record) { r.Kind = "gadget" },
		"unknown op":         func(r *inventory.Record) { r.Op = "merge" },
		"snapshot op":        func(r *inventory.Record) { r.Op = inventory.OpSnapshot },
		"snapshot kind":      func(r *inventory.Record) { r.Kind = inventory.KindSnapshot },
		"upsert without obj": func(r *inventory.Record) { r.Object = nil },
	} {
		r := ok
		mut(&r)
		assert.Error(t, r.Validate(), name)
	}
}

func TestEndpoints(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range inventory.Endpoints {
		assert.False(t, seen[e.Path], "path %s once", e.Path)
		seen[e.Path] = true
		assert.Regexp(t, `^/organization/`, e.Path)
		switch e.Scope {
		case inventory.ScopeProject:
			assert.Contains(t, e.Path, "{project_id}")
		case inventory.ScopeUser:
			assert.Contains(t, e.Path, "{user_id}")
		case inventory.ScopeGroup:
			assert.Contains(t, e.Path, "{group_id}")
		default:
			assert.NotContains(t, e.Path, "{")
		}
	}
	assert.Len(t, inventory.Kinds(), 16)
	// 9 organization listings, 6 per project, 1 per user and per group.
	assert.Equal(t, 9+6*7+12+5, inventory.RequestsPerSnapshot(7, 12, 5))
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,{"d":2,"c":3}]}`, `[]`, `"x"`, `{"last_used_at":1}`, `{"a":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := inventory.Canonical(b, []string{"last_used_at"})
		if err != nil {
			return
		}
		again, err := inventory.Canonical(c, nil)
		require.NoError(t, err, "canonical output is valid JSON")
		assert.Equal(t, string(c), string(again), "canonicalizing is idempotent")
	})
}
