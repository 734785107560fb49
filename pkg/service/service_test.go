package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testConfig struct {
	Name      string        `koanf:"name"`
	Token     config.Secret `koanf:"token"`
	TokenFile string        `koanf:"token_file"`
	Runtime   Runtime       `koanf:"runtime"`
}

func (c testConfig) RuntimeConfig() Runtime { return c.Runtime }

func (c testConfig) Validate() error {
	if c.Name == "" {
		return errors.New("name: required")
	}
	return nil
}

func testSpec(run func(ctx context.Context, cfg testConfig, s Settings) error) Spec[testConfig] {
	return Spec[testConfig]{
		Name:      "svc",
		EnvPrefix: "SVC_",
		Defaults: func() testConfig {
			rt := DefaultRuntime("127.0.0.1:0")
			rt.ShutdownTimeout = 200 * time.Millisecond
			return testConfig{Runtime: rt}
		},
		Run: run,
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitRun(ctx context.Context, _ testConfig, _ Settings) error {
	<-ctx.Done()
	return nil
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: x\nnmae: y\n"), 0o600))
	cases := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{name: "missing required value", code: 1, want: "name: required"},
		{name: "unknown key in file", args: []string{"--config", bad}, code: 1, want: "nmae: unknown configuration key"},
		{name: "unknown key in env", env: []string{"SVC_NAME=x", "SVC_NAMEE=y"}, code: 1, want: "namee: unknown configuration key (from environment variable SVC_NAMEE)"},
		{name: "check-config ok and redacted", env: []string{"SVC_NAME=x", "SVC_TOKEN=hunter2"}, args: []string{"--check-config"}, code: 0, want: "token: '[REDACTED]'"},
		{name: "stray argument", args: []string{"extra"}, code: 2, want: "unexpected arguments"},
		{name: "version", args: []string{"--version"}, code: 0, want: "svc dev"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncBuffer
			code := run(testSpec(waitRun), tc.args, &out, &errb, func() []string { return tc.env }, nil)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, out.String()+errb.String(), tc.want)
			assert.NotContains(t, out.String()+errb.String(), "hunter2")
		})
	}
}

func TestSecretFileReadableByOthersIsReported(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("hunter2\n"), 0o600))
	require.NoError(t, os.Chmod(tok, 0o644))
	env := func() []string { return []string{"SVC_NAME=x", "SVC_TOKEN_FILE=" + tok} }

	var out, errb syncBuffer
	assert.Equal(t, 0, run(testSpec(waitRun), []string{"--check-config"}, &out, &errb, env, nil))
	assert.Contains(t, errb.String(), "warning: secret file "+tok)
	assert.Contains(t, errb.String(), "-rw-r--r--")

	// A running service logs it at startup, as a warning naming the key,
	// the file and its mode.
	var logs syncBuffer
	sigs := make(chan os.Signal, 1)
	sigs <- os.Interrupt
	assert.Equal(t, 0, run(testSpec(waitRun), nil, &out, &logs, env, sigs))
	assert.Contains(t, logs.String(), `"msg":"secret file readable by others"`)
	assert.Contains(t, logs.String(), `"key":"token_file"`)
	assert.Contains(t, logs.String(), `"mode":"-rw-r--r--"`)
	assert.NotContains(t, out.String()+errb.String()+logs.String(), "hunter2")
}

func TestShutdown(t *testing.T) {
	// release unblocks slowRun's drain once Main gave up on it, so no
	// goroutine outlives the test.
	release := make(chan struct{})
	var slowDrains sync.WaitGroup
	slowDrains.Add(2) // the two cases below that use slowRun
	slowRun := func(ctx context.Context, _ testConfig, _ Settings) error {
		defer slowDrains.Done()
		<-ctx.Done()
		<-release
		return nil
	}
	t.Cleanup(func() {
		close(release)
		slowDrains.Wait()
	})
	cases := []struct {
		name    string
		run     func(ctx context.Context, cfg testConfig, s Settings) error
		signals int
		code    int
		want    string
	}{
		{name: "graceful", run: waitRun, signals: 1, code: 0, want: "signal received"},
		{name: "drain too slow", run: slowRun, signals: 1, code: 1, want: "shutdown deadline exceeded"},
		{name: "second signal aborts", run: slowRun, signals: 2, code: 1, want: "second signal"},
		{name: "run error", run: func(context.Context, testConfig, Settings) error {
			return errors.New("kaput")
		}, code: 1, want: "kaput"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			for range tc.signals {
				sigs <- syscall.SIGTERM
			}
			var errb syncBuffer
			code := run(testSpec(tc.run), nil, io.Discard, &errb, func() []string { return []string{"SVC_NAME=x"} }, sigs)
			assert.Equal(t, tc.code, code, errb.String())
			assert.Contains(t, errb.String(), tc.want)
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	ready := make(chan Settings, 1)
	sigs := make(chan os.Signal, 1)
	spec := testSpec(func(ctx context.Context, _ testConfig, s Settings) error {
		s.Admin.AddCheck("kafka", func(context.Context) error { return errors.New("no brokers reachable") })
		ready <- s
		<-ctx.Done()
		return nil
	})
	done := make(chan int, 1)
	go func() {
		done <- run(spec, nil, io.Discard, io.Discard, func() []string { return []string{"SVC_NAME=x"} }, sigs)
	}()
	s := <-ready
	base := "http://" + s.Admin.Addr()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body := get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "no brokers reachable")
	s.Admin.AddCheck("kafka", func(context.Context) error { return nil })
	code, _ = get("/readyz")
	assert.Equal(t, http.StatusOK, code)
	code, body = get("/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "go_goroutines")
	sigs <- syscall.SIGINT
	assert.Equal(t, 0, <-done)
}

func TestMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	cases := []struct {
		name string
		env  []string
		code int
		want int64 // the soft limit after the run
		log  string
	}{
		{name: "no budget leaves the runtime alone", env: nil, want: orig},
		{name: "budget sets the soft limit 32 MiB lower", env: []string{"SVC_RUNTIME__MEMORY__LIMIT=64MiB"}, want: 32 << 20, log: "go_soft_limit"},
		{name: "large budget sets the soft limit a sixth lower", env: []string{"SVC_RUNTIME__MEMORY__LIMIT=1GiB"}, want: 1<<30 - (1<<30)/6, log: "go_soft_limit"},
		{name: "GOMEMLIMIT takes precedence", env: []string{"SVC_RUNTIME__MEMORY__LIMIT=64MiB", "GOMEMLIMIT=1GiB"}, want: orig, log: "GOMEMLIMIT is set"},
		{name: "below the minimum", env: []string{"SVC_RUNTIME__MEMORY__LIMIT=1MiB"}, code: 1, want: orig, log: "runtime.memory.limit: 1 MiB is below the minimum of 48 MiB"},
		{name: "not a size", env: []string{"SVC_RUNTIME__MEMORY__LIMIT=lots"}, code: 1, want: orig, log: "like 256MiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(orig)
			sigs := make(chan os.Signal, 1)
			sigs <- syscall.SIGTERM
			var errb syncBuffer
			env := append([]string{"SVC_NAME=x"}, tc.env...)
			code := run(testSpec(waitRun), nil, io.Discard, &errb, func() []string { return env }, sigs)
			assert.Equal(t, tc.code, code, errb.String())
			assert.Equal(t, tc.want, debug.SetMemoryLimit(-1))
			assert.Contains(t, errb.String(), tc.log)
		})
	}
}
