package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/e2e/devstack"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// BenchmarkPollerSources runs one poller process with many sources (1,000
// by default; AUDITPIPE_E2E_POLLER_SOURCES changes it) against the
// simulator on kfake, waits until every source has published the
// simulator's backlog, keeps it polling for two more cycles, and reports
// the process's peak RSS and the RSS per source. Every source is its own
// organization to the poller (source id, state record, dedup memory,
// transactional producer); they all read the one simulated organization.
// memory.limit is set to what Validate asks for that many sources with
// collection.dedup_capacity AUDITPIPE_E2E_POLLER_DEDUP (default 1000).
func BenchmarkPollerSources(b *testing.B) {
	n := envInt(b, "AUDITPIPE_E2E_POLLER_SOURCES", 1000)
	dedup := envInt(b, "AUDITPIPE_E2E_POLLER_DEDUP", 1000)
	for i := 0; i < b.N; i++ {
		if i > 0 {
			break // one run is the measurement
		}
		runPollerSources(b, n, dedup)
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return n
}

func runPollerSources(b *testing.B, n, dedup int) {
	cl := kafkatest.NewCluster(b)
	sim := openaisimtest.Start(b, openaisim.Config{Seed: 21, Backlog: 100, BacklogSpan: time.Hour})
	ids := make([]string, n)
	env := []string{
		"AUDITPIPE_POLLER_KAFKA__BROKERS=" + strings.Join(cl.Addrs(), ","),
		"AUDITPIPE_POLLER_LOG__LEVEL=warn",
		fmt.Sprintf("AUDITPIPE_POLLER_COLLECTION__DEDUP_CAPACITY=%d", dedup),
		// What Validate asks for: 24 MiB + sources x (320 KiB + 32 B per
		// id) + one 20,000-event slice (39 MiB) within Go's soft limit,
		// which is memory.limit less a sixth.
		fmt.Sprintf("AUDITPIPE_POLLER_MEMORY__LIMIT=%dMiB", (24<<20+n*(320<<10+32*dedup)+20_000*2048)*6/5>>20+1),
	}
	// The sources go in a file (the environment lists at most ten
	// elements in order: SOURCES__10 sorts before SOURCES__2), their key
	// in a key file.
	dir := b.TempDir()
	keyFile := filepath.Join(dir, "admin-key")
	require.NoError(b, os.WriteFile(keyFile, []byte("sk-admin-e2e\n"), 0o600))
	var yaml strings.Builder
	yaml.WriteString("sources:\n")
	for i := range ids {
		ids[i] = fmt.Sprintf("org-%04d", i)
		fmt.Fprintf(&yaml, "  - {source_id: %s, workspace_id: ws-%s, admin_key_file: %s, base_url: %q, poll_interval: 10s}\n",
			ids[i], ids[i], keyFile, sim.URL()+"/v1")
	}
	cfgFile := filepath.Join(dir, "poller.yaml")
	require.NoError(b, os.WriteFile(cfgFile, []byte(yaml.String()), 0o600))
	out := &lockedBuffer{}
	admin := freeAddr(b)
	proc, err := devstack.StartProcess("poller", filepath.Join(binDir, "poller"), []string{"--config", cfgFile},
		append(env, "AUDITPIPE_POLLER_ADMIN__ADDR="+admin), out)
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = proc.Stop(time.Minute)
		if b.Failed() {
			b.Logf("poller output:\n%s", out.tail(100))
		}
	})
	start := time.Now()
	peak := int64(0)
	sample := func() {
		if v, err := vmHWM(proc.Pid()); err == nil {
			peak = max(peak, v)
		}
	}
	want := float64(len(sim.GroundTruth()))
	deadline := start.Add(15 * time.Minute)
	for {
		sample()
		select {
		case <-proc.Done():
			b.Fatalf("the poller exited: %v\n%s", proc.Err(), out.tail(30))
		default:
		}
		counts, done := map[string]float64{}, 0
		if c, err := tryPublishedCounts(admin); err == nil {
			counts = c
		}
		for _, id := range ids {
			if counts[id] >= want {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %s only %d of %d sources have published the backlog", time.Since(start).Round(time.Second), done, n)
		}
		time.Sleep(time.Second)
	}
	collected := time.Since(start)
	// Two more poll cycles of every source: the steady state.
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		sample()
	}
	rss, _ := vmRSS(proc.Pid())
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "steady-RSS-MiB")
	b.ReportMetric(float64(peak)/float64(n)/(1<<10), "peak-KiB/source")
	b.Logf("%d sources (dedup_capacity %d) on one poller: backlog of %d events each published after %s; peak RSS %d MiB, %d MiB polling (%.0f KiB per source at the peak)",
		n, dedup, int(want), collected.Round(time.Second), peak>>20, rss>>20, float64(peak)/float64(n)/1024)
}
