package upstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

// keyCatcher is a server that must never be asked anything: it counts its
// requests and the ones that carried an Authorization header.
type keyCatcher struct {
	srv        *httptest.Server
	requests   atomic.Int32
	withHeader atomic.Int32
}

func newKeyCatcher(t *testing.T, ln net.Listener) *keyCatcher {
	k := &keyCatcher{}
	k.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			k.withHeader.Add(1)
		}
		_, _ = w.Write([]byte(pageBody(false, item1)))
	}))
	if ln != nil {
		k.srv.Listener = ln
	}
	k.srv.Start()
	t.Cleanup(k.srv.Close)
	return k
}

func TestRedirectsAreNeverFollowed(t *testing.T) {
	sameHost := newKeyCatcher(t, nil) // 127.0.0.1, another port
	ln, err := net.Listen("tcp", "localhost:0")
	require.NoError(t, err)
	otherHost := newKeyCatcher(t, ln) // localhost: another host name
	_, otherPort, _ := net.SplitHostPort(otherHost.srv.Listener.Addr().String())
	for _, tc := range []struct {
		status int
		to     string
	}{
		{http.StatusFound, sameHost.srv.URL + "/v1/organization/audit_logs"},
		{http.StatusTemporaryRedirect, "http://localhost:" + otherPort + "/v1/organization/audit_logs"},
		{http.StatusMovedPermanently, "/v2/organization/audit_logs"},
		{http.StatusPermanentRedirect, "https://evil.example/steal"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			var n atomic.Int32
			var attempts []Attempt
			c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.Header().Set("Location", tc.to)
				w.WriteHeader(tc.status)
			}, &attempts)
			_, err := c.List(context.Background(), Query{GTE: 1, Limit: 100})
			require.Error(t, err)
			assert.Equal(t, ClassRedirect, ClassOf(err))
			assert.Equal(t, int32(1), n.Load(), "a redirect is permanent: not retried")
			assert.Contains(t, err.Error(), "redirect")
			assert.Contains(t, err.Error(), "base_url")
			assert.Equal(t, ClassRedirect, attempts[0].Class)
		})
	}
	assert.Zero(t, sameHost.requests.Load(), "the same host on another port was never asked")
	assert.Zero(t, otherHost.requests.Load(), "another host was never asked")
}

// logSink collects a client's log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestUpstreamTextIsScrubbedAndCapped(t *testing.T) {
	other := "sk-admin-OTHER-SOURCE-KEY"
	hugeID := strings.Repeat("r", 200<<10)
	echo := `{"error":{"message":"Incorrect API key provided: ` + key + ` (also ` + other + `)","type":"invalid_request_error"}}`
	cases := []struct {
		name   string
		status int
		body   string
		class  Class
	}{
		{"401 echoing the key", 401, echo, ClassAuth},
		{"500 echoing the key, retried and logged", 500, echo, ClassServer},
		{"400 echoing the key", 400, echo, ClassClient},
		{"a page whose copies disagree on an id that is the key", 200,
			pageBody(true, `{"id":"`+key+`","effective_at":1}`) + pageBody(true, `{"id":"`+key+`","effective_at":2}`), ClassDecode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs logSink
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("x-request-id", hugeID)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			c, err := New(Config{BaseURL: srv.URL + "/v1", Key: config.NewSecret(key), MaxAttempts: 3,
				Scrubber: config.NewScrubber(config.NewSecret(other))}, slog.New(slog.NewJSONHandler(&logs, nil)))
			require.NoError(t, err)
			c.cfg.Backoff.Initial, c.cfg.Backoff.Max = 1, 1
			_, err = c.List(context.Background(), Query{GTE: 1})
			require.Error(t, err)
			assert.Equal(t, tc.class, ClassOf(err))
			for what, text := range map[string]string{"error": err.Error(), "logs": logs.String()} {
				assert.NotContains(t, text, key, "%s hold the key", what)
				assert.NotContains(t, text, other, "%s hold another configured secret", what)
				for line := range strings.Lines(text) {
					assert.Less(t, len(line), 4096, "%s: every value is capped", what)
				}
			}
			assert.Contains(t, err.Error(), "rrrr", "the request id is kept, cut")
			if tc.class == ClassServer {
				assert.Contains(t, logs.String(), "retrying")
			}
			e, _ := errors.AsType[*Error](err)
			require.NotNil(t, e)
			sum := e.Summary()
			assert.NotContains(t, sum, "Incorrect API key", "a summary holds no upstream text")
			assert.NotContains(t, sum, "rrrr")
			assert.Contains(t, sum, string(tc.class))
		})
	}
}
