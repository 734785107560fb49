package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// hostileAPI is a fake OpenAI API that misbehaves in one way per path
// prefix (/<behaviour>/v1/organization/audit_logs). It records every
// request so that the test can check where each admin key went.
type hostileAPI struct {
	srv          *httptest.Server
	portCatcher  *catcher // 127.0.0.1, another port
	hostCatcher  *catcher // 127.0.0.2: another host
	hugeEvent    string
	normalEvent  string
	hugeEventID  string
	requestIDLen int

	mu       sync.Mutex
	requests []seenRequest
	echoN    int
}

type seenRequest struct {
	behaviour string
	url       string
	headers   http.Header
}

// catcher must never be asked anything: a redirect target.
type catcher struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []seenRequest
}

func newCatcher(t *testing.T, addr string) *catcher {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	c := &catcher{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits = append(c.hits, seenRequest{url: r.URL.String(), headers: r.Header.Clone()})
		c.mu.Unlock()
		// Events of another organization: never to be published as ours.
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"audit_log-foreign","type":"login.succeeded","effective_at":1790000000}],"first_id":"audit_log-foreign","last_id":"audit_log-foreign","has_more":false}`)
	}))
	c.srv.Listener = ln
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *catcher) requests() []seenRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]seenRequest(nil), c.hits...)
}

func newHostileAPI(t *testing.T) *hostileAPI {
	t.Helper()
	now := time.Now().Unix()
	h := &hostileAPI{
		portCatcher:  newCatcher(t, "127.0.0.1:0"),
		hostCatcher:  newCatcher(t, "127.0.0.2:0"),
		hugeEventID:  "audit_log-hostile-huge",
		requestIDLen: 200 << 10,
	}
	h.hugeEvent = fmt.Sprintf(`{"object":"organization.audit_log","id":%q,"type":"api_key.created","effective_at":%d,"actor":null,"pad":%q}`,
		h.hugeEventID, now-60, strings.Repeat("x", 1_500_000))
	h.normalEvent = fmt.Sprintf(`{"object":"organization.audit_log","id":"audit_log-hostile-normal","type":"project.created","effective_at":%d,"actor":null}`, now-60)
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// baseURL is the base_url of the source that meets behaviour.
func (h *hostileAPI) baseURL(behaviour string) string { return h.srv.URL + "/" + behaviour + "/v1" }

func (h *hostileAPI) serve(w http.ResponseWriter, r *http.Request) {
	behaviour, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	h.mu.Lock()
	h.requests = append(h.requests, seenRequest{behaviour: behaviour, url: r.URL.String(), headers: r.Header.Clone()})
	h.mu.Unlock()
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	w.Header().Set("x-request-id", strings.Repeat("r", h.requestIDLen))
	switch behaviour {
	case "loop": // has_more forever, the same cursor every time
		_, _ = fmt.Fprintf(w, `{"object":"list","data":[%s],"first_id":"audit_log-hostile-normal","last_id":"audit_log-hostile-normal","has_more":true}`, h.normalEvent)
	case "redirect-port":
		http.Redirect(w, r, h.portCatcher.srv.URL+r.URL.Path+"?"+r.URL.RawQuery, http.StatusFound)
	case "redirect-host":
		http.Redirect(w, r, h.hostCatcher.srv.URL+r.URL.Path+"?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
	case "echo": // the key back in every error message, a 500 (retried) then a 401
		h.mu.Lock()
		h.echoN++
		status := []int{http.StatusInternalServerError, http.StatusUnauthorized}[h.echoN%2]
		h.mu.Unlock()
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`, key)
	case "oversized": // a valid page with one event over the record limit
		_, _ = fmt.Fprintf(w, `{"object":"list","data":[%s,%s],"first_id":"audit_log-hostile-normal","last_id":%q,"has_more":false}`, h.normalEvent, h.hugeEvent, h.hugeEventID)
	default:
		http.NotFound(w, r)
	}
}

func (h *hostileAPI) seen() []seenRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]seenRequest(nil), h.requests...)
}

// TestHostileUpstream runs the pipeline with the simulator's organization
// and five sources behind a hostile API: one paginates forever, two
// redirect (to another port of the same host, to another host), one
// echoes its key in every error with a 200 KB x-request-id, and one serves
// an event over the record limit. The pipeline stays up and loads the
// simulator's events; /readyz names each failing source with what is
// wrong; the oversized event is dead-lettered; and no key goes anywhere but
// the Authorization header of a request to its configured host: not to a
// redirect target, not to the logs, /metrics or /readyz.
func TestHostileUpstream(t *testing.T) {
	api := newHostileAPI(t)
	sources := map[string]string{ // source id → behaviour
		"hostile-loop": "loop", "hostile-redirect-port": "redirect-port", "hostile-redirect-host": "redirect-host",
		"hostile-echo": "echo", "hostile-oversized": "oversized",
	}
	keys := map[string]string{} // behaviour → key
	var env []string
	i := 1
	for _, id := range []string{"hostile-loop", "hostile-redirect-port", "hostile-redirect-host", "hostile-echo", "hostile-oversized"} {
		b := sources[id]
		keys[b] = fmt.Sprintf("sk-admin-e2e-%s-%d", b, time.Now().UnixNano())
		p := fmt.Sprintf("AUDITPIPE_POLLER_SOURCES__%d__", i)
		env = append(env, p+"SOURCE_ID="+id, p+"WORKSPACE_ID=ws-"+id, p+"ADMIN_KEY="+keys[b],
			p+"BASE_URL="+api.baseURL(b), p+"POLL_INTERVAL=10s", p+"PAGE_SIZE=10", p+"BACKFILL=1h")
		i++
	}
	p := startPipeline(t, pipelineOptions{
		sim:      openaisim.Config{Seed: 31, Backlog: 200, BacklogSpan: 2 * time.Hour},
		extraEnv: map[string][]string{"poller": env},
	})
	admin := "http://" + p.stack.AdminAddr("poller")

	// The pipeline stays up: the simulator's events and the hostile API's
	// one valid event are loaded.
	p.waitCount("SELECT uniqExact(eventID) FROM openai_audit_logs", len(p.sim.GroundTruth())+1, 3*time.Minute)

	// /readyz names what is wrong with each hostile source, and only them.
	var body map[string]string
	require.Eventually(t, func() bool {
		code, b := get(t, admin+"/readyz")
		body = map[string]string{}
		_ = json.Unmarshal([]byte(b), &body)
		s := body["sources"]
		return code == http.StatusServiceUnavailable && strings.Contains(s, "hostile-loop: failing (3 in a row)") &&
			strings.Contains(s, "hostile-echo: failing") && strings.Contains(s, "hostile-redirect-port: failing") &&
			strings.Contains(s, "hostile-redirect-host: failing")
	}, 2*time.Minute, time.Second, "readiness names every hostile source: %v", body)
	s := body["sources"]
	assert.Contains(t, s, "pagination: the API's pages do not end")
	assert.Contains(t, s, "redirect (HTTP 302)")
	assert.Contains(t, s, "redirect (HTTP 307)")
	assert.Contains(t, s, "auth (HTTP 401): an Admin API key is required")
	assert.NotContains(t, s, "hostile-oversized", "the oversized event is dead-lettered and its source moves on")
	assert.NotContains(t, s, "dev-org")
	assert.Equal(t, "ok", body["kafka"])

	// The oversized event is a dead letter of the poller.
	dlq := kafkatest.ConsumeAll(t, p.stack.Infra.KafkaBrokers, "openai-audit-dlq", 1, 30*time.Second)
	var poller []string
	for _, r := range dlq {
		if hdr(r.Headers, "dlq_stage") == "poller" {
			poller = append(poller, string(r.Key)+"/"+hdr(r.Headers, "dlq_reason"))
		}
	}
	assert.Equal(t, []string{api.hugeEventID + "/too_large"}, poller)
	assert.Equal(t, "0", p.mustQuery("SELECT count() FROM openai_audit_logs WHERE eventID = 'audit_log-foreign'"),
		"a redirect target's events are never published")

	// Where the keys went: only in the Authorization header of requests to
	// the configured host, never to a redirect target.
	assert.Empty(t, api.portCatcher.requests(), "a redirect to another port of the same host is not followed")
	assert.Empty(t, api.hostCatcher.requests(), "a redirect to another host is not followed")
	for _, r := range api.seen() {
		key := keys[r.behaviour]
		require.NotEmpty(t, key, "a request for an unknown behaviour %q", r.behaviour)
		assert.Equal(t, "Bearer "+key, r.headers.Get("Authorization"), "each source sends its own key")
		assert.NotContains(t, r.url, key, "the key is never in the URL")
		for name, vs := range r.headers {
			if name != "Authorization" {
				assert.NotContains(t, strings.Join(vs, " "), key, "header %s", name)
			}
		}
	}

	// Nothing of any key in what the poller logs and serves, and no value
	// of the 200 KB x-request-id in full.
	_, metrics := get(t, admin+"/metrics")
	_, ready := get(t, admin+"/readyz")
	logs := p.out.all()
	require.NotEmpty(t, logs)
	require.Less(t, len(logs), 10000, "every line was kept to be checked")
	for b, key := range keys {
		assert.NotContains(t, metrics, key, "/metrics holds the %s key", b)
		assert.NotContains(t, ready, key, "/readyz holds the %s key", b)
		for _, line := range logs {
			if strings.Contains(line, key) {
				t.Errorf("a log line holds the %s key: %.300s", b, line)
			}
		}
	}
	assert.NotContains(t, ready, "rrrrrrrr", "no upstream text in /readyz")
	assert.NotContains(t, ready, "Incorrect API key", "no upstream text in /readyz")
	for _, line := range logs {
		if len(line) > 16<<10 {
			t.Errorf("a log line of %d bytes (upstream values are capped): %.300s", len(line), line)
		}
	}
	assert.Contains(t, strings.Join(logs, "\n"), "the API's pagination does not end", "the pagination failure is logged")
	for _, name := range []string{"poller", "enricher", "loader"} {
		select {
		case <-p.stack.Procs[name].Done():
			t.Errorf("%s exited: %v", name, p.stack.Procs[name].Err())
		default:
		}
	}
}

// hdr returns the value of header key, "" without it.
func hdr(hs []kgo.RecordHeader, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// get returns the status and body of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
