package openaisim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// fixedNow is the clock of deterministic tests.
var fixedNow = time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

func TestWalkEveryPageSize(t *testing.T) {
	t.Parallel()
	// Bursts of 7 events per second put same-second groups across page
	// boundaries for most page sizes.
	sim := newSim(t, openaisim.Config{Seed: 7, Backlog: 250, SameSecondBurst: 7, BacklogSpan: time.Hour, Now: clock})
	h := sim.Handler()
	for _, stream := range []struct {
		name  string
		q     url.Values
		truth []string
	}{
		{"default", url.Values{}, truthIDs(sim, notTenant)},
		{"tenant_only", url.Values{"tenant_only": {"true"}}, truthIDs(sim, tenant)},
	} {
		require.NotEmpty(t, stream.truth)
		for limit := 1; limit <= 100; limit++ {
			got := walk(t, h, stream.q, limit)
			require.Equal(t, stream.truth, got, "%s stream, limit %d", stream.name, limit)
		}
	}
	assert.Equal(t, len(sim.GroundTruth()), 250)
}

func TestOrderNewestFirst(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 3, Backlog: 200, Now: clock})
	_, items := page(t, get(t, sim.Handler(), adminKey, url.Values{"limit": {"100"}}))
	require.NotEmpty(t, items)
	for i := 1; i < len(items); i++ {
		assert.GreaterOrEqual(t, items[i-1].EffectiveAt, items[i].EffectiveAt)
	}
}

func TestBeforeGivesPreviousPage(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 4, Backlog: 300, SameSecondBurst: 5, Now: clock})
	h := sim.Handler()
	q := url.Values{"limit": {"10"}}
	p1, items1 := page(t, get(t, h, adminKey, q))
	q.Set("after", *p1.LastID)
	p2, items2 := page(t, get(t, h, adminKey, q))
	require.Len(t, items2, 10)

	back := url.Values{"limit": {"10"}, "before": {*p2.FirstID}}
	p0, items0 := page(t, get(t, h, adminKey, back))
	assert.Equal(t, items1, items0)
	assert.False(t, p0.HasMore, "nothing is newer than the first page")

	back.Set("before", *p2.LastID)
	_, items := page(t, get(t, h, adminKey, back))
	assert.Equal(t, items2[:9], items[1:], "before=last_id of page 2 ends just before its last item")
	assert.Equal(t, items1[len(items1)-1], items[0])
}

func TestEmptyPageHasNullIDs(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Now: clock})
	w := get(t, sim.Handler(), adminKey, nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}`, w.Body.String())
	assert.True(t, strings.HasPrefix(w.Header().Get("x-request-id"), "req_"))
}

func TestDefaultLimitIs20(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 1, Backlog: 300, Now: clock})
	resp, items := page(t, get(t, sim.Handler(), adminKey, nil))
	assert.Len(t, items, 20)
	assert.True(t, resp.HasMore)
}

func TestFilters(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 11, Backlog: 600, BacklogSpan: 2 * time.Hour, Now: clock})
	h := sim.Handler()
	truth := sim.GroundTruth()
	// Pick filter values from the data itself.
	var proj, actorID, email, resource, tenantType string
	for _, e := range truth {
		// A project with events of the combined filter's types, so that
		// every filter below selects something whatever the generator draws.
		if proj == "" && e.ProjectID != "" && !e.TenantScoped && (e.Type == "login.succeeded" || e.Type == "api_key.updated") {
			proj = e.ProjectID
		}
		if actorID == "" && len(e.ActorIDs) > 1 && !e.TenantScoped {
			actorID = e.ActorIDs[len(e.ActorIDs)-1]
		}
		if email == "" && len(e.ActorEmails) > 0 && !e.TenantScoped {
			email = e.ActorEmails[0]
		}
		if resource == "" && len(e.ResourceIDs) > 0 && !e.TenantScoped {
			resource = e.ResourceIDs[0]
		}
		if tenantType == "" && strings.HasPrefix(e.Type, "tenant.") {
			tenantType = e.Type
		}
	}
	mid := truth[len(truth)/2].EffectiveAt
	in := func(s []string, v string) bool { return slices.Contains(s, v) }
	tests := []struct {
		name string
		q    url.Values
		keep func(openaisim.Event) bool
	}{
		{"project_ids", url.Values{"project_ids[]": {proj}}, func(e openaisim.Event) bool { return e.ProjectID == proj }},
		{"event_types two", url.Values{"event_types[]": {"login.succeeded", "api_key.created"}}, func(e openaisim.Event) bool {
			return e.Type == "login.succeeded" || e.Type == "api_key.created"
		}},
		{"event_types without brackets", url.Values{"event_types": {"login.failed"}}, func(e openaisim.Event) bool { return e.Type == "login.failed" }},
		{"actor_ids", url.Values{"actor_ids[]": {actorID}}, func(e openaisim.Event) bool { return in(e.ActorIDs, actorID) }},
		{"actor_emails", url.Values{"actor_emails[]": {email}}, func(e openaisim.Event) bool { return in(e.ActorEmails, email) }},
		{"resource_ids", url.Values{"resource_ids[]": {resource}}, func(e openaisim.Event) bool { return in(e.ResourceIDs, resource) }},
		{"effective_at gte", url.Values{"effective_at[gte]": {itoa(int(mid))}}, func(e openaisim.Event) bool { return e.EffectiveAt >= mid }},
		{"effective_at gt", url.Values{"effective_at[gt]": {itoa(int(mid))}}, func(e openaisim.Event) bool { return e.EffectiveAt > mid }},
		{"effective_at lt", url.Values{"effective_at[lt]": {itoa(int(mid))}}, func(e openaisim.Event) bool { return e.EffectiveAt < mid }},
		{"effective_at lte", url.Values{"effective_at[lte]": {itoa(int(mid))}}, func(e openaisim.Event) bool { return e.EffectiveAt <= mid }},
		{"effective_at window", url.Values{"effective_at[gte]": {itoa(int(mid - 600))}, "effective_at[lt]": {itoa(int(mid))}}, func(e openaisim.Event) bool {
			return e.EffectiveAt >= mid-600 && e.EffectiveAt < mid
		}},
		{"tenant_only with tenant type", url.Values{"tenant_only": {"true"}, "event_types[]": {tenantType}}, func(e openaisim.Event) bool { return e.Type == tenantType }},
		{"tenant type without tenant_only", url.Values{"event_types[]": {tenantType}}, func(openaisim.Event) bool { return false }},
		{"combined", url.Values{"project_ids[]": {proj}, "event_types[]": {"login.succeeded", "api_key.updated"}}, func(e openaisim.Event) bool {
			return e.ProjectID == proj && (e.Type == "login.succeeded" || e.Type == "api_key.updated")
		}},
		{"unknown parameter ignored", url.Values{"order": {"asc"}}, notTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := cloneValues(tt.q)
			want := truthIDs(sim, func(e openaisim.Event) bool {
				if q.Get("tenant_only") == "true" {
					return e.TenantScoped && tt.keep(e)
				}
				return !e.TenantScoped && tt.keep(e)
			})
			got := walk(t, h, q, 37)
			assert.Equal(t, want, got)
			if tt.name != "tenant type without tenant_only" {
				assert.NotEmpty(t, got, "the filter should select something in this data set")
			}
		})
	}
}

func TestBadParameters(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 1, Backlog: 10, Now: clock})
	tests := []struct {
		name  string
		q     url.Values
		param string
	}{
		{"limit 0", url.Values{"limit": {"0"}}, "limit"},
		{"limit 101", url.Values{"limit": {"101"}}, "limit"},
		{"limit negative", url.Values{"limit": {"-5"}}, "limit"},
		{"limit not a number", url.Values{"limit": {"ten"}}, "limit"},
		{"effective_at not a number", url.Values{"effective_at[gte]": {"yesterday"}}, "effective_at[gte]"},
		{"tenant_only not a bool", url.Values{"tenant_only": {"maybe"}}, "tenant_only"},
		{"tenant_only with org type", url.Values{"tenant_only": {"true"}, "event_types[]": {"tenant.user.added", "login.succeeded"}}, "event_types"},
		{"after garbage", url.Values{"after": {"audit_log-abc"}}, "after"},
		{"before garbage", url.Values{"before": {"cur_%%%"}}, "before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := apiErr(t, get(t, sim.Handler(), adminKey, tt.q), http.StatusBadRequest)
			assert.Equal(t, "invalid_request_error", e.Type)
			require.NotNil(t, e.Param)
			assert.Equal(t, tt.param, *e.Param)
		})
	}
	t.Run("item id is not a cursor", func(t *testing.T) {
		id := sim.GroundTruth()[0].ID
		apiErr(t, get(t, sim.Handler(), adminKey, url.Values{"after": {id}}), http.StatusBadRequest)
	})
	t.Run("limit bounds accepted", func(t *testing.T) {
		for _, l := range []string{"1", "100"} {
			page(t, get(t, sim.Handler(), adminKey, url.Values{"limit": {l}}))
		}
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 1, Backlog: 5, AdminKeys: []string{"custom-admin-key"}, Now: clock})
	tests := []struct {
		name   string
		header string
		status int
		msg    string
	}{
		{"admin key", "Bearer sk-admin-abc123", http.StatusOK, ""},
		{"configured key", "Bearer custom-admin-key", http.StatusOK, ""},
		{"lower-case scheme", "bearer sk-admin-abc123", http.StatusOK, ""},
		{"project key", "Bearer sk-proj-abc123", http.StatusUnauthorized, "Missing scopes: api.audit_logs.read"},
		{"user key", "Bearer sk-abc123", http.StatusUnauthorized, "Missing scopes: api.audit_logs.read"},
		{"no header", "", http.StatusUnauthorized, "You didn't provide an API key"},
		{"basic auth", "Basic dXNlcjpwYXNz", http.StatusUnauthorized, "You didn't provide an API key"},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, "You didn't provide an API key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, openaisim.ListPath, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			sim.Handler().ServeHTTP(w, req)
			assert.True(t, strings.HasPrefix(w.Header().Get("x-request-id"), "req_"))
			if tt.status == http.StatusOK {
				page(t, w)
				return
			}
			e := apiErr(t, w, tt.status)
			assert.Contains(t, e.Message, tt.msg)
			assert.Nil(t, e.Param)
			assert.Nil(t, e.Code)
		})
	}
	reqs := sim.Requests()
	require.Len(t, reqs, len(tests))
	for _, r := range reqs {
		assert.NotContains(t, r.Key, "abc123", "keys are redacted")
	}
}

func TestUnknownPath(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Now: clock})
	req := httptest.NewRequest(http.MethodPost, openaisim.ListPath, nil)
	w := httptest.NewRecorder()
	sim.Handler().ServeHTTP(w, req)
	e := apiErr(t, w, http.StatusNotFound)
	assert.Equal(t, "Invalid URL (POST /v1/organization/audit_logs)", e.Message)
}

// TestConcurrentAdditionsKeepCursorContinuity adds new, late and
// same-second events while a walker pages: every event that existed when the
// walk started is seen exactly once, and nothing is seen twice.
func TestConcurrentAdditionsKeepCursorContinuity(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 5, Backlog: 400, SameSecondBurst: 10, BacklogSpan: time.Hour, LateArrivalRate: 0.5, LateArrivalMaxAge: time.Hour, Now: clock})
	h := sim.Handler()
	before := truthIDs(sim, notTenant)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				sim.Generate(1)
			}
		}
	})
	// Besides the concurrent writer, add new, same-second and late events
	// between every two pages so that additions certainly interleave.
	q := url.Values{"limit": {"7"}}
	var got []string
	for {
		resp, items := page(t, get(t, h, adminKey, q))
		for _, it := range items {
			got = append(got, it.ID)
		}
		sim.Generate(2)
		if len(items) > 0 {
			at := time.Unix(items[len(items)-1].EffectiveAt, 0)
			sim.GenerateSpec(openaisim.Spec{N: 2, Type: "login.succeeded", EffectiveAt: at})
			sim.GenerateSpec(openaisim.Spec{N: 1, Type: "login.failed", EffectiveAt: at.Add(-time.Minute)})
		}
		if !resp.HasMore {
			break
		}
		q.Set("after", *resp.LastID)
	}
	close(stop)
	wg.Wait()

	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "id %s served twice in one walk", id)
	}
	for _, id := range before {
		require.Equal(t, 1, seen[id], "pre-existing id %s missed", id)
	}
	assert.Greater(t, len(got), len(before), "late events behind the cursor are walked too")
}

func TestItemsAreServedVerbatim(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 9, Backlog: 50, Now: clock})
	raw := []byte(`{"object":"organization.audit_log",  "id":"audit_log-Verbatim000000000000000001","type":"future.thing.happened","effective_at":1755691200,"actor":null,"future.thing.happened":{"x":[1,2,3],"y":"\u00e9"}}`)
	evs, err := sim.AddRaw(raw)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.False(t, evs[0].TenantScoped)
	assert.Equal(t, fixedNow, evs[0].VisibleAt)

	w := get(t, sim.Handler(), adminKey, url.Values{"event_types[]": {"future.thing.happened"}})
	resp, _ := page(t, w)
	require.Len(t, resp.Data, 1)
	assert.Equal(t, string(raw), string(resp.Data[0]))
	assert.Contains(t, w.Body.String(), string(raw))
	assert.Equal(t, 1, sim.Served()[evs[0].ID])

	_, err = sim.AddRaw(raw)
	require.Error(t, err, "duplicate id")
	_, err = sim.AddRaw([]byte(`{"id":"x","type":"y"}`))
	require.Error(t, err, "effective_at missing")
	_, err = sim.AddRaw([]byte(`not json`))
	require.Error(t, err)
}

func TestLateArrivalIsFoundByTrailingWindow(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 2, Backlog: 100, BacklogSpan: time.Hour, Now: clock})
	h := sim.Handler()
	first := walk(t, h, url.Values{}, 100)
	late := sim.GenerateSpec(openaisim.Spec{N: 1, Type: "api_key.created", EffectiveAt: fixedNow.Add(-2 * time.Hour)})
	require.Len(t, late, 1)
	assert.True(t, late[0].Late)
	assert.Equal(t, fixedNow, late[0].VisibleAt)
	assert.Less(t, late[0].EffectiveAt, fixedNow.Add(-time.Hour).Unix())

	again := walk(t, h, url.Values{"effective_at[gte]": {itoa(int(fixedNow.Add(-3 * time.Hour).Unix()))}}, 100)
	assert.Len(t, again, len(first)+1)
	assert.Equal(t, late[0].ID, again[len(again)-1], "the late event is the oldest")
}

func TestGroundTruthJSON(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 2, Backlog: 3, Now: clock})
	data, err := json.Marshal(sim.GroundTruth())
	require.NoError(t, err)
	var evs []openaisim.Event
	require.NoError(t, json.Unmarshal(data, &evs))
	assert.Equal(t, sim.GroundTruth(), evs)
}
