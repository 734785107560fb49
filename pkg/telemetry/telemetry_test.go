package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLogConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  LogConfig
		err  string
		want string
	}{
		{name: "json", cfg: LogConfig{Level: "info", Format: "json"}, want: `"msg":"hello"`},
		{name: "text debug", cfg: LogConfig{Level: "debug", Format: "text"}, want: "msg=hello"},
		{name: "bad level", cfg: LogConfig{Level: "loud", Format: "json"}, err: `level: unknown "loud"`},
		{name: "bad format", cfg: LogConfig{Level: "info", Format: "xml"}, err: `format: unknown "xml"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err != "" {
				require.ErrorContains(t, tc.cfg.Validate(), tc.err)
				return
			}
			require.NoError(t, tc.cfg.Validate())
			var buf bytes.Buffer
			l, err := NewLogger(tc.cfg, &buf)
			require.NoError(t, err)
			l.Info("hello")
			l.Debug("quiet")
			assert.Contains(t, buf.String(), tc.want)
			assert.Equal(t, tc.cfg.Level == "debug", bytes.Contains(buf.Bytes(), []byte("quiet")))
		})
	}
}

func TestAdminConfig(t *testing.T) {
	require.NoError(t, AdminConfig{Addr: "127.0.0.1:9101", CheckTimeout: time.Second}.Validate())
	err := AdminConfig{Addr: "nope", CheckTimeout: 0}.Validate()
	require.ErrorContains(t, err, "addr:")
	require.ErrorContains(t, err, "check_timeout: must be positive")
}

func TestAdminServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewAdmin(AdminConfig{Addr: "127.0.0.1:0", Pprof: true, CheckTimeout: 50 * time.Millisecond}, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, a.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.Addr() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/readyz")
	assert.Equal(t, http.StatusOK, code, "no checks: ready")
	a.AddCheck("slow", func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("registry did not answer")
	})
	code, body := get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "registry did not answer", "a hung check times out")
	code, _ = get("/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
	cancel()
	require.NoError(t, <-done)
}

func TestReadyGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewAdmin(AdminConfig{Addr: "127.0.0.1:0", CheckTimeout: 50 * time.Millisecond}, reg, nil, WithReadyInterval(10*time.Millisecond))
	gauge := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "auditpipe_ready" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("auditpipe_ready is not exported")
		return -1
	}
	assert.Equal(t, 0.0, gauge(), "not ready before the first evaluation")

	var failing atomic.Bool
	failing.Store(true)
	a.AddCheck("kafka", func(context.Context) error {
		if failing.Load() {
			return errors.New("no brokers reachable")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	// The periodic evaluation follows the check without any /readyz request.
	failing.Store(false)
	require.Eventually(t, func() bool { return gauge() == 1 }, 5*time.Second, 5*time.Millisecond, "the check passes: ready")
	failing.Store(true)
	require.Eventually(t, func() bool { return gauge() == 0 }, 5*time.Second, 5*time.Millisecond, "the check fails: not ready")

	// A /readyz request sets it at once, whatever the period.
	b := NewAdmin(AdminConfig{Addr: "127.0.0.1:0", CheckTimeout: 50 * time.Millisecond}, prometheus.NewRegistry(), nil, WithReadyInterval(time.Hour))
	b.AddCheck("registry", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	assert.Len(t, b.Ready(context.Background()), 1, "a hung check is bounded by check_timeout and fails")
	cases := []struct {
		name   string
		failed bool
		want   float64
	}{
		{name: "ready", failed: false, want: 1},
		{name: "not ready", failed: true, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failing.Store(tc.failed)
			rec := httptest.NewRecorder()
			a.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			assert.Equal(t, tc.want, gauge())
			assert.Equal(t, map[bool]int{false: http.StatusOK, true: http.StatusServiceUnavailable}[tc.failed], rec.Code)
		})
	}
}
