package e2e_test

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/e2e/devstack"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// TestPollerReplicasSurviveKill9 runs two poller processes with the same
// configuration (six sources, four state partitions) and kills one with
// SIGKILL while events keep arriving: it neither leaves the coordination
// group nor ends its transactions. The survivor must take over its
// sources once the session times out (its producers, with the same
// per-source transactional ids, fence the dead one's) and, with the
// killed replica back, every source must have published every event
// exactly once to read_committed readers.
func TestPollerReplicasSurviveKill9(t *testing.T) {
	cl := kafkatest.NewCluster(t, kfake.GroupMinSessionTimeout(100*time.Millisecond))
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 11, Backlog: 120, BacklogSpan: 3 * time.Hour})
	ids := []string{"org-1", "org-2", "org-3", "org-4", "org-5", "org-6"}

	env := []string{
		"AUDITPIPE_POLLER_KAFKA__BROKERS=" + strings.Join(cl.Addrs(), ","),
		"AUDITPIPE_POLLER_TOPICS__RAW__PARTITIONS=4",
		"AUDITPIPE_POLLER_TOPICS__STATE__PARTITIONS=4",
		"AUDITPIPE_POLLER_SESSION_TIMEOUT=3s",
		"AUDITPIPE_POLLER_LOG__FORMAT=text",
	}
	for i, id := range ids {
		p := fmt.Sprintf("AUDITPIPE_POLLER_SOURCES__%d__", i)
		env = append(env,
			p+"SOURCE_ID="+id, p+"WORKSPACE_ID=ws-"+id, p+"ADMIN_KEY=sk-admin-e2e",
			p+"BASE_URL="+sim.URL()+"/v1", p+"POLL_INTERVAL=10s", p+"PAGE_SIZE=25")
	}
	out := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("poller output:\n%s", out.tail(150))
		}
	})
	type replica struct {
		proc  *devstack.Process
		admin string
	}
	start := func(name string) replica {
		admin := freeAddr(t)
		proc, err := devstack.StartProcess(name, filepath.Join(binDir, "poller"), nil,
			append(append([]string(nil), env...), "AUDITPIPE_POLLER_ADMIN__ADDR="+admin, "AUDITPIPE_POLLER_INSTANCE_ID="+name), out)
		require.NoError(t, err)
		t.Cleanup(func() { _ = proc.Stop(30 * time.Second) })
		return replica{proc: proc, admin: admin}
	}
	a, b := start("poller-a"), start("poller-b")
	waitPublished(t, cl, sim, ids, 2*time.Minute)
	// The first replica may have collected the whole backlog before the
	// second joined; live events show who owns what once both are in (one
	// more cycle first, so that the group has settled).
	sim.Generate(5)
	waitPublished(t, cl, sim, ids, 2*time.Minute)
	beforeA, beforeB := publishedCounts(t, a.admin), publishedCounts(t, b.admin)
	sim.Generate(10)
	waitPublished(t, cl, sim, ids, 2*time.Minute)
	ownedA, ownedB := grown(beforeA, publishedCounts(t, a.admin)), grown(beforeB, publishedCounts(t, b.admin))
	t.Logf("replica a collects %v, replica b %v", ownedA, ownedB)
	require.NotEmpty(t, ownedA, "replica a owns sources when it is killed")
	require.NotEmpty(t, ownedB, "replica b owns sources")
	assert.ElementsMatch(t, ids, append(ownedA, ownedB...), "each source is collected by exactly one replica")

	beforeB = publishedCounts(t, b.admin)
	sim.Generate(30)
	time.Sleep(500 * time.Millisecond)
	a.proc.Kill()
	sim.Generate(30)
	killed := time.Now()
	waitPublished(t, cl, sim, ids, 2*time.Minute)
	t.Logf("replica b caught up with every source %s after replica a was killed", time.Since(killed).Round(100*time.Millisecond))
	assert.ElementsMatch(t, ids, grown(beforeB, publishedCounts(t, b.admin)), "the survivor collects every source")

	require.NoError(t, a.proc.Restart()) // the killed replica comes back and takes its share again
	sim.Generate(20)
	waitPublished(t, cl, sim, ids, 2*time.Minute)
	require.NoError(t, a.proc.Stop(30*time.Second))
	require.NoError(t, b.proc.Stop(30*time.Second))

	truth := map[string]string{}
	for _, ev := range sim.GroundTruth() {
		truth[ev.ID] = string(ev.Raw)
	}
	for id, recs := range rawBySource(t, cl, 0, time.Second) {
		keys := make([]string, len(recs))
		for i, r := range recs {
			keys[i] = string(r.Key)
			require.Equal(t, truth[keys[i]], string(r.Value), "source %s: event %s byte for byte", id, r.Key)
		}
		dups, lost, unknown := openaisimtest.Compare(sim, keys)
		assert.Empty(t, dups, "source %s: duplicated events", id)
		assert.Empty(t, lost, "source %s: lost events", id)
		assert.Empty(t, unknown, "source %s: events the simulator never served", id)
	}
}

// rawBySource reads openai-audit-raw as a read_committed reader and groups
// the records by their source_id header.
func rawBySource(t *testing.T, cl *kafkatest.Cluster, want int, timeout time.Duration) map[string][]*kgo.Record {
	t.Helper()
	out := map[string][]*kgo.Record{}
	for _, r := range cl.ConsumeAll(t, "openai-audit-raw", want, timeout) {
		for _, h := range r.Headers {
			if h.Key == "source_id" {
				out[string(h.Value)] = append(out[string(h.Value)], r)
			}
		}
	}
	return out
}

// waitPublished waits until every source has published at least as many
// distinct events as the simulator holds.
func waitPublished(t *testing.T, cl *kafkatest.Cluster, sim *openaisim.Simulator, ids []string, timeout time.Duration) {
	t.Helper()
	want := len(sim.GroundTruth())
	deadline := time.Now().Add(timeout)
	for {
		got := rawBySource(t, cl, want*len(ids), 2*time.Second)
		counts := map[string]int{}
		done := true
		for _, id := range ids {
			distinct := map[string]bool{}
			for _, r := range got[id] {
				distinct[string(r.Key)] = true
			}
			counts[id] = len(distinct)
			done = done && len(distinct) >= want
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d events per source; have %v", want, counts)
		}
	}
}

// publishedCounts returns, per source, the events the replica behind the
// admin address has published (its events_published_total).
func publishedCounts(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	out, err := tryPublishedCounts(admin)
	require.NoError(t, err)
	return out
}

// tryPublishedCounts is publishedCounts returning its error.
func tryPublishedCounts(admin string) (map[string]float64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		const metric = `auditpipe_poller_events_published_total{source_id="`
		line, ok := strings.CutPrefix(sc.Text(), metric)
		if !ok {
			continue
		}
		id, rest, _ := strings.Cut(line, `"}`)
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", sc.Text(), err)
		}
		out[id] = v
	}
	return out, sc.Err()
}

// grown returns the sources whose count rose from before to after, sorted.
func grown(before, after map[string]float64) []string {
	var out []string
	for id, v := range after {
		if v > before[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
