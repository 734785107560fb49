package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
	"github.com/auditpipe/auditpipe/pkg/service"
	"github.com/auditpipe/auditpipe/pkg/telemetry"
)

const goodKey = "sk-admin-test-key-0123456789"

func newCluster(t testing.TB) *kafkatest.Cluster {
	return kafkatest.NewCluster(t, kfake.GroupMinSessionTimeout(100*time.Millisecond))
}

func source(id string, sim *openaisim.Simulator, key string) SourceConfig {
	return SourceConfig{
		WorkspaceID: "ws-" + id, SourceID: id, AdminKey: config.NewSecret(key),
		BaseURL: sim.URL() + "/v1", PageSize: 10, Tags: map[string]string{"env": "test"},
	}
}

func testConfig(cl *kafkatest.Cluster, sources ...SourceConfig) Config {
	cfg := DefaultConfig()
	cfg.Kafka = cl.Config()
	cfg.Topics.Raw.Partitions = 4
	cfg.Topics.State.Partitions = 4
	cfg.SessionTimeout = 1500 * time.Millisecond
	cfg.Collection.TransactionTimeout = 10 * time.Second
	cfg.Collection.RequestTimeout = 5 * time.Second
	cfg.Collection.Slice = 4 * time.Hour
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.Sources = sources
	return cfg
}

// fast are the options of every test poller: it polls, retries and
// notices group changes far faster than the configuration allows.
var fast = []Option{
	WithPollInterval(50 * time.Millisecond), WithRescanInterval(300 * time.Millisecond),
	WithErrorRetry(50 * time.Millisecond), WithAPIBackoff(5 * time.Millisecond),
	WithStateReadIdle(100 * time.Millisecond), WithHeartbeat(100 * time.Millisecond),
}

type poller struct {
	reg    *prometheus.Registry
	admin  *telemetry.Admin
	cancel context.CancelFunc
	done   chan error
}

func startPoller(t testing.TB, cfg Config, opts ...Option) *poller {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	admin := telemetry.NewAdmin(telemetry.AdminConfig{Addr: "127.0.0.1:0", CheckTimeout: time.Second}, reg, logger)
	run, err := New(cfg, service.Settings{Logger: logger, Metrics: reg, Admin: admin, Version: "test", ShutdownTimeout: cfg.ShutdownTimeout},
		append(slices.Clone(fast), opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{reg: reg, admin: admin, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run.Run(ctx) }()
	t.Cleanup(p.stop)
	return p
}

// stop cancels the poller and waits for Run to return (idempotent).
func (p *poller) stop() {
	p.cancel()
	if err, ok := <-p.done; ok {
		if err != nil {
			panic(fmt.Sprintf("poller returned %v", err))
		}
		close(p.done)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// published reads the raw topic as a read_committed reader and groups the
// records by source.
func published(t *testing.T, cl *kafkatest.Cluster, want int, timeout time.Duration) map[string][]*kgo.Record {
	t.Helper()
	recs := cl.ConsumeAll(t, "openai-audit-raw", want, timeout)
	out := map[string][]*kgo.Record{}
	for _, r := range recs {
		out[header(r, "source_id")] = append(out[header(r, "source_id")], r)
	}
	return out
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// waitFor polls until every source in ids has at least len(truth) records.
func waitFor(t *testing.T, cl *kafkatest.Cluster, sim *openaisim.Simulator, ids []string, timeout time.Duration) {
	t.Helper()
	want := len(sim.GroundTruth())
	deadline := time.Now().Add(timeout)
	for {
		got := published(t, cl, want*len(ids), 2*time.Second)
		ok := true
		for _, id := range ids {
			if len(got[id]) < want {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			counts := map[string]int{}
			for _, id := range ids {
				counts[id] = len(got[id])
			}
			t.Fatalf("timed out waiting for %d events per source, have %v", want, counts)
		}
	}
}

// requireExactlyOnce checks that source id published every ground-truth
// event exactly once, byte for byte, with the contract headers.
func requireExactlyOnce(t *testing.T, recs []*kgo.Record, sim *openaisim.Simulator, id string) {
	t.Helper()
	truth := map[string][]byte{}
	for _, ev := range sim.GroundTruth() {
		truth[ev.ID] = ev.Raw
	}
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = string(r.Key)
		want, ok := truth[string(r.Key)]
		require.True(t, ok, "published an unknown id %s", r.Key)
		require.Equal(t, string(want), string(r.Value), "value is the event byte for byte")
		require.Equal(t, "ws-"+id, header(r, "workspace_id"))
		require.Equal(t, "openai", header(r, "source_type"))
		require.Equal(t, "365", header(r, "source_ttl"))
		require.Equal(t, "test", header(r, "poller_version"))
		require.Equal(t, `{"env":"test"}`, header(r, "tags"))
		_, err := time.Parse(time.RFC3339Nano, header(r, "received_at"))
		require.NoError(t, err)
	}
	dups, missing, _ := openaisimtest.Compare(sim, keys)
	require.Empty(t, dups, "source %s: duplicated ids", id)
	require.Empty(t, missing, "source %s: lost ids", id)
}

func TestBackfillSteadyAndLateArrivals(t *testing.T) {
	cl := newCluster(t)
	// 400 backlog events over 12 hours in bursts of 25 per second, so that
	// same-second runs cross the 10-event page boundaries.
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 1, Backlog: 400, BacklogSpan: 12 * time.Hour, SameSecondBurst: 25})
	startPoller(t, testConfig(cl, source("org-a", sim, goodKey)))
	waitFor(t, cl, sim, []string{"org-a"}, 30*time.Second)

	sim.Generate(30) // steady polling picks up live events
	waitFor(t, cl, sim, []string{"org-a"}, 20*time.Second)

	// Late arrivals an hour old: far behind the cursor and its 2-minute
	// overlap, inside the 24-hour re-scan window.
	sim.GenerateSpec(openaisim.Spec{N: 15, EffectiveAt: time.Now().Add(-time.Hour)})
	waitFor(t, cl, sim, []string{"org-a"}, 20*time.Second)

	time.Sleep(500 * time.Millisecond) // a few more cycles and re-scans
	got := published(t, cl, 0, time.Second)
	requireExactlyOnce(t, got["org-a"], sim, "org-a")
	assert.Greater(t, sim.Served()[string(got["org-a"][0].Key)], 1, "re-scans served events again; dedup dropped them")
}

// TestDedupOverflowKeepsEveryStream fills the dedup memory past its
// capacity during a backfill of both streams: the floor raised by one
// stream's forgotten ids must not make the other stream skip events it has
// not published yet.
func TestDedupOverflowKeepsEveryStream(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 5, Backlog: 3000, BacklogSpan: 6 * time.Hour})
	tenant := 0
	for _, e := range sim.GroundTruth() {
		if e.TenantScoped {
			tenant++
		}
	}
	require.Positive(t, tenant, "the backlog has tenant-scoped events")
	src := source("org-big", sim, goodKey)
	src.PageSize = 100
	cfg := testConfig(cl, src)
	cfg.Collection.DedupCapacity = 1000 // far below the backlog
	cfg.Collection.Slice = time.Hour
	p := startPoller(t, cfg)
	waitFor(t, cl, sim, []string{"org-big"}, 60*time.Second)
	got := published(t, cl, 0, time.Second)
	requireExactlyOnce(t, got["org-big"], sim, "org-big")
	assert.Positive(t, metricValue(t, p, "auditpipe_poller_dedup_evicted_total"), "the dedup memory overflowed")
}
