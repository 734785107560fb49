package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/e2e/devstack"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// binDir holds the poller, enricher and loader binaries built for this run.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "auditpipe-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, svc := range []string{"poller", "enricher", "loader"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, svc), "./cmd/"+svc)
		cmd.Dir = filepath.Join("..", svc)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", svc, err)
			return 1
		}
	}
	binDir = dir
	code := m.Run()
	if err := chservertest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping ClickHouse:", err)
	}
	return code
}

// pipeline is a dev stack started for one test: Kafka (kfake, or an external
// broker), srfake, the simulator, synthetic GeoIP databases, the shared
// embedded ClickHouse with a database of the test's own, and the three
// services as processes.
type pipeline struct {
	t     testing.TB
	stack *devstack.Stack
	sim   *openaisim.Simulator
	ch    string
	db    string
	out   *lockedBuffer
}

type pipelineOptions struct {
	sim openaisim.Config
	// seed, when set, adds events to the simulator before the services
	// start, so they form a backlog rather than late arrivals.
	seed          func(*openaisim.Simulator)
	externalKafka []string
	extraEnv      map[string][]string
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func startPipeline(t testing.TB, opts pipelineOptions) *pipeline {
	t.Helper()
	chURL, db := chservertest.NewDatabase(t)
	// The loader installs the detections next to its table (clickhouse.detections).
	t.Cleanup(func() { _ = chservertest.Exec(chURL, "DROP DATABASE IF EXISTS "+db+"_detections SYNC") })
	out := &lockedBuffer{}
	env := map[string][]string{
		"poller": {
			"AUDITPIPE_POLLER_SOURCES__0__POLL_INTERVAL=10s", // the minimum
		},
		"loader": {
			"AUDITPIPE_LOADER_CLICKHOUSE__DATABASE=" + db,
		},
	}
	for k, v := range opts.extraEnv {
		env[k] = append(env[k], v...)
	}
	cfg := devstack.Config{
		Infra: devstack.InfraConfig{
			DataDir:            t.TempDir(),
			KafkaAddr:          freeAddr(t),
			ExternalKafka:      opts.externalKafka,
			RegistryAddr:       "127.0.0.1:0",
			ExternalClickHouse: chURL,
			SimulatorAddr:      "127.0.0.1:0",
			Simulator:          opts.sim,
		},
		BinDir:    binDir,
		ConfigDir: filepath.Join("..", "deploy", "config"),
		AdminAddrs: map[string]string{
			"poller": freeAddr(t), "enricher": freeAddr(t), "loader": freeAddr(t),
		},
		ExtraEnv: env,
		Out:      out,
	}
	if opts.seed != nil {
		cfg.BeforeServices = func(inf *devstack.Infra) error {
			opts.seed(inf.Sim)
			return nil
		}
	}
	logger := slog.New(slog.NewTextHandler(out, nil))
	st, err := devstack.Start(context.Background(), cfg, logger)
	require.NoError(t, err)
	p := &pipeline{t: t, stack: st, sim: st.Infra.Sim, ch: chURL, db: db, out: out}
	t.Cleanup(func() {
		st.Close()
		if t.Failed() {
			t.Logf("pipeline output:\n%s", out.tail(200))
		}
	})
	return p
}

// query runs sql against the test's database and returns the body.
func (p *pipeline) query(sql string) (string, error) {
	u := p.ch + "/?database=" + url.QueryEscape(p.db)
	resp, err := http.Post(u, "text/plain", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), nil
}

func (p *pipeline) mustQuery(sql string) string {
	p.t.Helper()
	out, err := p.query(sql)
	require.NoError(p.t, err, sql)
	return strings.TrimSpace(out)
}

// rows decodes a FORMAT JSONEachRow answer.
func (p *pipeline) rows(sql string) []map[string]any {
	p.t.Helper()
	out := p.mustQuery(sql + " FORMAT JSONEachRow")
	var rows []map[string]any
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		require.NoError(p.t, json.Unmarshal([]byte(line), &r), line)
		rows = append(rows, r)
	}
	return rows
}

// waitCount waits until sql (a single number) reaches want, failing after
// timeout with the last value seen.
func (p *pipeline) waitCount(sql string, want int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	last := "?"
	for time.Now().Before(deadline) {
		out, err := p.query(sql)
		if err == nil {
			last = strings.TrimSpace(out)
			if last == fmt.Sprint(want) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("waiting %s for %q to reach %d: last %s", timeout, sql, want, last)
}

// lockedBuffer collects the services' output for failure reports.
type lockedBuffer struct {
	mu    sync.Mutex
	lines []string
	part  string
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.part + string(p)
	parts := strings.Split(s, "\n")
	b.part = parts[len(parts)-1]
	b.lines = append(b.lines, parts[:len(parts)-1]...)
	if len(b.lines) > 20000 {
		b.lines = b.lines[len(b.lines)-10000:]
	}
	return len(p), nil
}

// all returns every line kept (the last 10,000 to 20,000), and the
// partial line, if any.
func (b *lockedBuffer) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.lines...)
	if b.part != "" {
		out = append(out, b.part)
	}
	return out
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	from := max(0, len(b.lines)-n)
	return strings.Join(b.lines[from:], "\n")
}
