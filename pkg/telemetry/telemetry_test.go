package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
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
