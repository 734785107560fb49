package openaisim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 3, Backlog: 10, Now: clock})
	base := sim.URL() + "/_sim"
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, data
	}
	defer http.DefaultClient.CloseIdleConnections()

	status, body := do(http.MethodPost, "/events", `{"id":"audit_log-ctl1","type":"login.succeeded","effective_at":1755691200}
{"id":"audit_log-ctl2","type":"tenant.user.added","effective_at":1755691201,"tenant.user.added":{"id":"u"}}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	var evs []openaisim.Event
	require.NoError(t, json.Unmarshal(body, &evs))
	require.Len(t, evs, 2)
	assert.True(t, evs[1].TenantScoped)

	status, body = do(http.MethodPost, "/events", `[{"id":"audit_log-ctl3","type":"x.y","effective_at":5}]`)
	require.Equal(t, http.StatusCreated, status, string(body))
	status, _ = do(http.MethodPost, "/events", `{"id":"audit_log-ctl3","type":"x.y","effective_at":5}`)
	assert.Equal(t, http.StatusBadRequest, status, "duplicate id")

	status, body = do(http.MethodPost, "/generate?n=5&type=api_key.created&effective_at=1755000000", "")
	require.Equal(t, http.StatusCreated, status, string(body))
	require.NoError(t, json.Unmarshal(body, &evs))
	require.Len(t, evs, 5)
	assert.Equal(t, int64(1755000000), evs[0].EffectiveAt)
	assert.Equal(t, "api_key.created", evs[0].Type)

	status, body = do(http.MethodPost, "/faults", `[{"kind":"rate_limit","retry_after":"3s","count":-1,"match":{"every":2}},{"kind":"slow","delay":0.5}]`)
	require.Equal(t, http.StatusCreated, status, string(body))
	var faults []openaisim.Fault
	require.NoError(t, json.Unmarshal(body, &faults))
	require.Len(t, faults, 2)
	assert.Equal(t, "3s", strings.Trim(string(mustJSON(t, faults[0])["retry_after"]), `"`))
	assert.Equal(t, 2, faults[0].Match.Every)
	assert.Equal(t, int64(500), faults[1].Delay.Milliseconds())
	status, _ = do(http.MethodPost, "/faults", `{"kind":"nope"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	status, _ = do(http.MethodDelete, "/faults", "")
	assert.Equal(t, http.StatusNoContent, status)
	assert.Empty(t, sim.Faults())

	fetch(t, t.Context(), sim.URL(), nil)
	status, body = do(http.MethodGet, "/requests", "")
	require.Equal(t, http.StatusOK, status)
	var reqs []openaisim.RequestLog
	require.NoError(t, json.Unmarshal(body, &reqs))
	require.Len(t, reqs, 1, "control requests are not logged")
	assert.Equal(t, http.StatusOK, reqs[0].Status)

	status, body = do(http.MethodGet, "/truth", "")
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, json.Unmarshal(body, &evs))
	assert.Len(t, evs, 10+3+5)

	status, body = do(http.MethodGet, "/served", "")
	require.Equal(t, http.StatusOK, status)
	var served map[string]int
	require.NoError(t, json.Unmarshal(body, &served))
	nonTenant := len(truthIDs(sim, notTenant))
	require.LessOrEqual(t, nonTenant, 20)
	assert.Len(t, served, nonTenant, "one default page served every non-tenant event once")

	for _, path := range []string{"/networks", "/event_types", "/healthz", "/faults"} {
		status, _ = do(http.MethodGet, path, "")
		assert.Equal(t, http.StatusOK, status, path)
	}
	status, _ = do(http.MethodGet, "/nothing", "")
	assert.Equal(t, http.StatusNotFound, status)
}

func mustJSON(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}
