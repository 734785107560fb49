package openaisim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

const adminKey = "sk-admin-test"

// get calls the handler in-process.
func get(t testing.TB, h http.Handler, key string, q url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, openaisim.ListPath+"?"+q.Encode(), nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// page decodes a 200 response.
func page(t testing.TB, w *httptest.ResponseRecorder) (openaisim.ListResponse, []openaisim.AuditLog) {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var resp openaisim.ListResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	items := make([]openaisim.AuditLog, len(resp.Data))
	for i, raw := range resp.Data {
		require.NoError(t, json.Unmarshal(raw, &items[i]))
	}
	return resp, items
}

// apiErr decodes an error response and checks its status.
func apiErr(t testing.TB, w *httptest.ResponseRecorder, status int) openaisim.ErrorBody {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	var e openaisim.ErrorResponse
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e))
	require.NotEmpty(t, e.Error.Message)
	require.NotEmpty(t, e.Error.Type)
	return e.Error
}

// walk pages with after=last_id until has_more is false and returns the ids
// in order.
func walk(t testing.TB, h http.Handler, q url.Values, limit int) []string {
	t.Helper()
	q = cloneValues(q)
	q.Set("limit", itoa(limit))
	var ids []string
	for range 100000 {
		resp, items := page(t, get(t, h, adminKey, q))
		require.LessOrEqual(t, len(items), limit)
		for _, it := range items {
			ids = append(ids, it.ID)
		}
		if !resp.HasMore {
			return ids
		}
		require.NotNil(t, resp.LastID)
		q.Set("after", *resp.LastID)
	}
	t.Fatal("walk did not end")
	return nil
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// truthIDs returns the ground-truth ids passing keep, newest first.
func truthIDs(sim *openaisim.Simulator, keep func(openaisim.Event) bool) []string {
	var ids []string
	for _, e := range sim.GroundTruth() {
		if keep(e) {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

func notTenant(e openaisim.Event) bool { return !e.TenantScoped }
func tenant(e openaisim.Event) bool    { return e.TenantScoped }

func newSim(t testing.TB, cfg openaisim.Config) *openaisim.Simulator {
	t.Helper()
	sim, err := openaisim.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	return sim
}
