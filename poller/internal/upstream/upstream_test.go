package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/retry"
)

const (
	item1 = `{"object":"organization.audit_log","id":"audit_log-a","type":"login.succeeded","effective_at":1720000002,"actor":null}`
	item2 = `{"id":"audit_log-b","type":"api_key.created","effective_at":1720000001 ,"api_key.created":{"id":"key_x","data":{"scopes":["a"]}}}`
)

func pageBody(hasMore bool, items ...string) string {
	first, last := "null", "null"
	if len(items) > 0 {
		first, last = `"c1"`, `"c2"`
	}
	return fmt.Sprintf(`{"object":"list","data":[%s],"first_id":%s,"last_id":%s,"has_more":%t}`, strings.Join(items, ","), first, last, hasMore)
}

func TestDecodePage(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		items   []string
		docs    int
		wantErr string
	}{
		{name: "normal", body: pageBody(true, item1, item2), items: []string{item1, item2}, docs: 1},
		{name: "empty page with null cursors", body: pageBody(false), docs: 1},
		{name: "two equal documents", body: pageBody(true, item1) + "\n" + pageBody(true, item1), items: []string{item1}, docs: 2},
		{name: "concatenated without separator", body: pageBody(true, item1) + pageBody(true, item1, item2), items: []string{item1, item2}, docs: 2},
		{name: "documents disagree", body: pageBody(true, item1) + pageBody(false, item1), wantErr: "disagree"},
		{name: "same id different bytes", body: pageBody(true, item1) + pageBody(true, strings.Replace(item1, "login.succeeded", "logout.succeeded", 1)), wantErr: "different bodies"},
		{name: "truncated", body: pageBody(true, item1)[:40], wantErr: "decoding document 1"},
		{name: "trailing garbage", body: pageBody(true, item1) + "xx", wantErr: "decoding document 2"},
		{name: "empty body", body: "  ", wantErr: "empty body"},
		{name: "no data", body: `{"object":"list","has_more":false}`, wantErr: "no data"},
		{name: "no has_more", body: `{"object":"list","data":[]}`, wantErr: "no has_more"},
		{name: "item without id", body: pageBody(false, `{"effective_at":1}`), wantErr: "missing id"},
		{name: "item with string effective_at", body: pageBody(false, `{"id":"x","effective_at":"1"}`), wantErr: "item 0"},
		{name: "item without effective_at", body: pageBody(false, `{"id":"x"}`), wantErr: "missing effective_at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := DecodePage([]byte(tc.body))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrMalformed)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.docs, p.Documents)
			require.Len(t, p.Items, len(tc.items))
			for i, want := range tc.items {
				assert.Equal(t, want, string(p.Items[i].Raw), "bytes kept as received")
			}
		})
	}
	p, err := DecodePage([]byte(pageBody(true, item1, item2)))
	require.NoError(t, err)
	assert.Equal(t, "audit_log-b", p.Items[1].ID)
	assert.Equal(t, int64(1720000001), p.Items[1].EffectiveAt)
	assert.True(t, p.HasMore)
	require.NotNil(t, p.LastID)
	assert.Equal(t, "c2", *p.LastID)
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(pageBody(true, item1, item2)))
	f.Add([]byte(pageBody(false)))
	f.Add([]byte(pageBody(true, item1) + "\n" + pageBody(true, item1)))
	f.Add([]byte(`{"data":[{"id":"a","effective_at":1}],"has_more":false}{"data":[],"has_more":false}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePage(body)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		require.GreaterOrEqual(t, p.Documents, 1)
		ids := map[string]bool{}
		for _, it := range p.Items {
			require.NotEmpty(t, it.ID)
			require.False(t, ids[it.ID], "ids are unique within a page")
			ids[it.ID] = true
			require.Contains(t, string(body), string(it.Raw), "raw bytes come from the body")
		}
	})
}

func TestQueryValues(t *testing.T) {
	q := Query{GTE: 10, LT: 20, EventTypes: []string{"a.b", "c"}, ProjectIDs: []string{"p"}, TenantOnly: true, Limit: 100, After: "cur"}
	assert.Equal(t, "after=cur&effective_at%5Bgte%5D=10&effective_at%5Blt%5D=20&event_types%5B%5D=a.b&event_types%5B%5D=c&limit=100&project_ids%5B%5D=p&tenant_only=true", q.Values().Encode())
	assert.Equal(t, "effective_at%5Bgte%5D=5", Query{GTE: 5}.Values().Encode())
}

const key = "sk-admin-SECRETSECRET"

func newTestClient(t *testing.T, h http.HandlerFunc, attempts *[]Attempt) (*Client, *[]time.Duration) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL + "/v1", Key: config.NewSecret(key), MaxAttempts: 4,
		OnAttempt: func(a Attempt) {
			if attempts != nil {
				*attempts = append(*attempts, a)
			}
		}}, nil)
	require.NoError(t, err)
	var sleeps []time.Duration
	c.cfg.Backoff.Clock = retry.ClockFunc(func(ctx context.Context, d time.Duration) error { sleeps = append(sleeps, d); return ctx.Err() })
	return c, &sleeps
}

func TestClientRetries(t *testing.T) {
	type reply struct {
		status int
		header map[string]string
		body   string
	}
	rateLimited := `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	cases := []struct {
		name      string
		replies   []reply
		wantClass Class
		wantSleep []time.Duration // exact delays (Retry-After); nil skips
		requests  int
	}{
		{name: "429 with Retry-After seconds", replies: []reply{{429, map[string]string{"Retry-After": "2"}, rateLimited}, {200, nil, pageBody(false, item1)}}, wantSleep: []time.Duration{2 * time.Second}, requests: 2},
		{name: "429 with Retry-After-Ms wins", replies: []reply{{429, map[string]string{"Retry-After": "9", "Retry-After-Ms": "150"}, rateLimited}, {200, nil, pageBody(false)}}, wantSleep: []time.Duration{150 * time.Millisecond}, requests: 2},
		{name: "5xx storm then success", replies: []reply{{500, nil, "oops"}, {502, nil, ""}, {503, nil, ""}, {200, nil, pageBody(false)}}, requests: 4},
		{name: "5xx storm exhausts attempts", replies: []reply{{500, nil, ""}, {500, nil, ""}, {500, nil, ""}, {500, nil, ""}}, wantClass: ClassServer, requests: 4},
		{name: "401 is permanent", replies: []reply{{401, nil, `{"error":{"message":"Missing scopes: api.audit_logs.read.","type":"invalid_request_error","param":null,"code":null}}`}}, wantClass: ClassAuth, requests: 1},
		{name: "403 is permanent", replies: []reply{{403, nil, ""}}, wantClass: ClassAuth, requests: 1},
		{name: "400 is permanent", replies: []reply{{400, nil, ""}}, wantClass: ClassClient, requests: 1},
		{name: "x-should-retry false stops a 500", replies: []reply{{500, map[string]string{"x-should-retry": "false"}, ""}}, wantClass: ClassServer, requests: 1},
		{name: "x-should-retry true retries a 400", replies: []reply{{400, map[string]string{"x-should-retry": "true"}, ""}, {200, nil, pageBody(false)}}, requests: 2},
		{name: "408 and 409 retry", replies: []reply{{408, nil, ""}, {409, nil, ""}, {200, nil, pageBody(false)}}, requests: 3},
		{name: "malformed body is retried", replies: []reply{{200, nil, `{"data":[`}, {200, nil, pageBody(false, item1)}}, requests: 2},
		{name: "malformed body exhausts attempts", replies: []reply{{200, nil, `x`}, {200, nil, `x`}, {200, nil, `x`}, {200, nil, `x`}}, wantClass: ClassDecode, requests: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			var attempts []Attempt
			c, sleeps := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "/v1/organization/audit_logs", r.URL.Path)
				assert.Equal(t, "Bearer "+key, r.Header.Get("Authorization"))
				rep := tc.replies[min(int(n.Add(1))-1, len(tc.replies)-1)]
				for k, v := range rep.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("x-request-id", "req_123")
				w.WriteHeader(rep.status)
				_, _ = w.Write([]byte(rep.body))
			}, &attempts)
			page, err := c.List(context.Background(), Query{GTE: 1, Limit: 100})
			assert.Equal(t, tc.requests, int(n.Load()))
			assert.Len(t, attempts, tc.requests)
			if tc.wantSleep != nil {
				assert.Equal(t, tc.wantSleep, *sleeps)
			}
			if tc.wantClass == "" {
				require.NoError(t, err)
				assert.Equal(t, "req_123", page.RequestID)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantClass, ClassOf(err))
			assert.Contains(t, err.Error(), "req_123", "x-request-id is reported")
			assert.NotContains(t, err.Error(), key, "the key never reaches errors")
			if tc.wantClass == ClassAuth {
				assert.Contains(t, err.Error(), "Organization Settings → Admin Keys")
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	c, _ := newTestClient(t, func(http.ResponseWriter, *http.Request) {}, nil)
	for attempt := 1; attempt < 40; attempt++ {
		d := c.cfg.Backoff.Delay(attempt)
		assert.GreaterOrEqual(t, d, c.cfg.Backoff.Initial/2)
		assert.LessOrEqual(t, d, c.cfg.Backoff.Max)
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
	assert.Equal(t, 3*time.Second, retryAfter(h, now))
	h.Set("Retry-After", "soon")
	assert.Zero(t, retryAfter(h, now))
}

func TestTimeoutIsNetworkClass(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}, nil)
	c.cfg.RequestTimeout = 50 * time.Millisecond
	c.cfg.MaxAttempts = 2
	_, err := c.List(context.Background(), Query{})
	require.Error(t, err)
	assert.Equal(t, ClassNetwork, ClassOf(err))
	assert.Contains(t, err.Error(), "timed out")
}

func TestNewRejects(t *testing.T) {
	_, err := New(Config{BaseURL: "ftp://x", Key: config.NewSecret(key)}, nil)
	require.Error(t, err)
	_, err = New(Config{BaseURL: "http://x"}, nil)
	require.Error(t, err)
}
