package devstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

func TestMain(m *testing.M) {
	code := m.Run()
	_ = chservertest.Stop()
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestInfra(t *testing.T) {
	chURL := chservertest.Start(t)
	dir := t.TempDir()
	cfg := InfraConfig{
		DataDir:            dir,
		KafkaAddr:          freePort(t),
		RegistryAddr:       "127.0.0.1:0",
		ExternalClickHouse: chURL,
		SimulatorAddr:      "127.0.0.1:0",
		Simulator:          openaisim.Config{Seed: 1, Backlog: 10},
	}
	inf, err := StartInfra(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	cl, err := kgo.NewClient(kgo.SeedBrokers(inf.KafkaBrokers...), kgo.AllowAutoTopicCreation())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "persisted", Value: []byte("kept")}).FirstErr())
	cl.Close()

	resp, err := http.Get(inf.RegistryURL + "/subjects")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	req, _ := http.NewRequest(http.MethodGet, inf.SimulatorURL+"/organization/audit_logs?limit=3", nil)
	req.Header.Set("Authorization", "Bearer "+SimulatorKey)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `"object":"organization.audit_log"`)

	for _, p := range []string{inf.GeoIP.City, inf.GeoIP.ASN, inf.GeoIP.ISP, inf.GeoIP.ConnectionType, inf.GeoIP.Enterprise} {
		assert.FileExists(t, p)
	}
	inf.Close()

	// Kafka's data survives a restart of the stack on the same directory.
	inf, err = StartInfra(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer inf.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(inf.KafkaBrokers...), kgo.ConsumeTopics("persisted"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	require.NoError(t, fs.Err())
	require.Equal(t, 1, fs.NumRecords())
	assert.Equal(t, "kept", string(fs.Records()[0].Value))
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProcess(t *testing.T) {
	var out syncBuf
	p, err := StartProcess("sleeper", "/bin/sh", []string{"-c", "trap 'exit 0' TERM; echo hello; while true; do sleep 0.05; done"}, nil, &out)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "[sleeper] hello\n") }, 5*time.Second, 10*time.Millisecond)
	require.Error(t, p.Restart(), "cannot restart a running process")
	p.Kill()
	<-p.Done()
	require.Error(t, p.Err(), "killed")
	require.NoError(t, p.Restart())
	require.Eventually(t, func() bool { return strings.Count(out.String(), "[sleeper] hello\n") == 2 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, p.Stop(5*time.Second), "a graceful exit on SIGTERM")

	stubborn, err := StartProcess("stubborn", "/bin/sh", []string{"-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"}, nil, &out)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "[stubborn] ready") }, 5*time.Second, 10*time.Millisecond)
	err = stubborn.Stop(200 * time.Millisecond)
	require.ErrorContains(t, err, "did not stop within 200ms and was killed")
}

func TestBannerQueriesAreShellSafe(t *testing.T) {
	s := &Stack{Infra: &Infra{KafkaBrokers: []string{"127.0.0.1:9092"}, RegistryURL: "http://127.0.0.1:8081", ClickHouse: "http://127.0.0.1:8123", SimulatorURL: "http://127.0.0.1:8787/v1"},
		cfg: Config{AdminAddrs: map[string]string{"poller": "127.0.0.1:9101", "enricher": "127.0.0.1:9102", "loader": "127.0.0.1:9103"}}}
	b := s.Banner()
	for _, line := range strings.Split(b, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "curl ") {
			inner := strings.TrimSuffix(strings.SplitN(line, "'", 2)[1], "'")
			assert.NotContains(t, inner, "'", "a quote inside the single-quoted URL would break the shell line")
			assert.NotContains(t, inner, " ")
		}
	}
	assert.Contains(t, b, "http://127.0.0.1:9103/metrics")
	assert.Contains(t, b, "\n  "+ChartsURL("http://127.0.0.1:8123", "default")+"\n")
	assert.Contains(t, b, "http://127.0.0.1:8123/play")
	assert.Contains(t, b, "FROM+default_detections.openai_audit_detections+FINAL")
	assert.Contains(t, b, "curl -X POST 'http://127.0.0.1:8787/_sim/attacks?kind=credential_stuffing'")
}

func TestParseAttacks(t *testing.T) {
	kinds, err := parseAttacks("all")
	require.NoError(t, err)
	assert.Equal(t, openaisim.AttackKinds(), kinds)
	kinds, err = parseAttacks("none")
	require.NoError(t, err)
	assert.Empty(t, kinds)
	kinds, err = parseAttacks("scim_changed")
	require.NoError(t, err)
	assert.Equal(t, []string{"scim_changed"}, kinds)
	_, err = parseAttacks("bogus")
	require.ErrorContains(t, err, `-attacks: unknown attack scenario "bogus"`)
}

func TestChartsURL(t *testing.T) {
	u := ChartsURL("http://127.0.0.1:8123", "audit")
	prefix := "http://127.0.0.1:8123/dashboard#"
	require.True(t, strings.HasPrefix(u, prefix), u)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(u, prefix))
	require.NoError(t, err, "the page decodes the fragment with atob")
	var state struct {
		Host        string            `json:"host"`
		User        string            `json:"user"`
		Queries     []any             `json:"queries"`
		Params      map[string]string `json:"params"`
		SearchQuery string            `json:"search_query_"`
	}
	require.NoError(t, json.Unmarshal(raw, &state))
	assert.Equal(t, "http://127.0.0.1:8123", state.Host)
	assert.Equal(t, "default", state.User)
	assert.NotNil(t, state.Queries)
	assert.Empty(t, state.Queries, "the page reads the charts with the search query")
	assert.Equal(t, map[string]string{"rounding": "60", "seconds": "86400"}, state.Params)
	assert.Equal(t, "SELECT title, query FROM audit.auditpipe_dashboards WHERE dashboard = 'auditpipe'", state.SearchQuery)
}

// TestLoaderEnvLeavesTheProtocol: the dev stack points the loader at the
// embedded engine by address only, so the end-to-end suite loads over the
// loader's default protocol (TestLoaderRunsTheDefaultProtocol in e2e).
func TestLoaderEnvLeavesTheProtocol(t *testing.T) {
	s := &Stack{Infra: &Infra{ClickHouse: "http://127.0.0.1:8123", RegistryURL: "http://127.0.0.1:8081"}, cfg: Config{AdminAddrs: map[string]string{"loader": "127.0.0.1:9103"}}}
	env := s.Env("loader")
	assert.Contains(t, env, "AUDITPIPE_LOADER_CLICKHOUSE__ADDR=127.0.0.1:8123")
	for _, kv := range env {
		assert.False(t, strings.HasPrefix(kv, "AUDITPIPE_LOADER_CLICKHOUSE__PROTOCOL="), "the dev stack overrides the loader's default protocol: %s", kv)
	}
}
