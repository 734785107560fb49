package e2e_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/auditpipe/auditpipe/e2e/devstack"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// soakSettings shape a chaos soak: how long faults are injected per seed,
// the gap between two faults, and how long the pipeline may take to
// converge once they stop.
type soakSettings struct {
	chaos          time.Duration
	minGap, maxGap time.Duration
	settle         time.Duration
	// session is every group's session timeout; pauses last longer.
	session time.Duration
	// ratePerMinute is the simulator's live event rate during the chaos.
	ratePerMinute float64
}

// shortSoak is the soak of `make test`: two seeds of one minute each.
var shortSoak = soakSettings{
	chaos: time.Minute, minGap: 4 * time.Second, maxGap: 10 * time.Second,
	settle: 3 * time.Minute, session: 6 * time.Second, ratePerMinute: 600,
}

// soakSeeds returns the seeds to run: AUDITPIPE_SOAK_SEEDS (comma-separated,
// to replay a failure) or n seeds drawn from the clock.
func soakSeeds(t *testing.T, n int) []uint64 {
	if s := os.Getenv("AUDITPIPE_SOAK_SEEDS"); s != "" {
		var seeds []uint64
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			require.NoError(t, err, "AUDITPIPE_SOAK_SEEDS")
			seeds = append(seeds, v)
		}
		return seeds
	}
	base := uint64(time.Now().UnixNano())
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	return seeds
}

// TestChaosSoak runs the whole pipeline on kfake while a seeded random
// schedule of faults hits every service (kill -9, SIGTERM, SIGSTOP longer
// than the session timeout, then SIGCONT) and the broker (restart), with
// each service supervised (restarted when it exits). Afterwards every
// served event must be in ClickHouse exactly once, and every consumer group
// must have caught up. A failing seed is replayed with
// AUDITPIPE_SOAK_SEEDS=<seed>. The long version is `make soak`.
func TestChaosSoak(t *testing.T) {
	for _, seed := range soakSeeds(t, 2) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			runSoak(t, seed, shortSoak, nil)
		})
	}
}

// soakReport is what one soak run measured.
type soakReport struct {
	seed        uint64
	faults      map[string]int
	restarts    map[string]int
	events      int
	lost        int
	duplicated  int
	longestWait time.Duration // longest time no new event reached ClickHouse while some were pending
	converged   time.Duration // from the last fault to every event loaded
}

func (r soakReport) String() string {
	var fs []string
	for _, k := range slices.Sorted(maps.Keys(r.faults)) {
		fs = append(fs, fmt.Sprintf("%s=%d", k, r.faults[k]))
	}
	var rs []string
	for _, k := range slices.Sorted(maps.Keys(r.restarts)) {
		rs = append(rs, fmt.Sprintf("%s=%d", k, r.restarts[k]))
	}
	return fmt.Sprintf("seed %d: faults [%s], restarts [%s], events %d, lost %d, duplicated %d, longest wait for progress %s, converged %s after the last fault",
		r.seed, strings.Join(fs, " "), strings.Join(rs, " "), r.events, r.lost, r.duplicated, r.longestWait.Round(100*time.Millisecond), r.converged.Round(100*time.Millisecond))
}

// brokerRestarter restarts the Kafka broker the pipeline uses.
type brokerRestarter func(ctx context.Context) error

// runSoak starts a pipeline (on kfake, or on the broker of restart when
// external is set), injects faults for s.chaos and checks the outcome.
func runSoak(t *testing.T, seed uint64, s soakSettings, external *externalBroker) soakReport {
	t.Logf("chaos soak seed %d (replay: AUDITPIPE_SOAK_SEEDS=%d)", seed, seed)
	p := startSoakPipeline(t, seed, s, external)
	restartBroker := brokerRestarter(func(context.Context) error { return p.stack.Infra.RestartKafka() })
	if external != nil {
		restartBroker = external.restart
	}

	sup := p.stack
	sup.Supervise(devstack.SupervisePolicy{Backoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, StableAfter: 20 * time.Second})
	stopMerges(t, p)

	liveCtx, stopLive := context.WithCancel(context.Background())
	p.sim.Start(liveCtx)
	mon := startProgressMonitor(p)

	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ch := newChaos(t, p, s, rng, restartBroker)
	lastFault := ch.run(s.chaos)
	stopLive()
	ch.resumeAll()

	report := soakReport{seed: seed, faults: ch.counts, restarts: map[string]int{}}
	truth := p.sim.GroundTruth()
	report.events = len(truth)
	p.waitCount("SELECT uniqExact(eventID) FROM openai_audit_logs", len(truth), s.settle)
	report.converged = time.Since(lastFault)
	report.longestWait = mon.stop()
	for name, proc := range p.stack.Procs {
		report.restarts[name] = proc.Restarts()
		assert.LessOrEqual(t, report.restarts[name], ch.exits[name],
			"%s restarted more often than faults stopped it: it exited on its own (see its log)", name)
	}

	report.lost, report.duplicated = exactlyOnceBeforeMerges(t, p, truth)
	waitGroupsCaughtUp(t, p, s.settle)
	waitAllReady(t, p, time.Minute)
	t.Log(report.String())
	return report
}

// externalBroker is an Apache Kafka broker for the long soak.
type externalBroker struct {
	addr    string
	restart brokerRestarter
}

func startSoakPipeline(t *testing.T, seed uint64, s soakSettings, external *externalBroker) *pipeline {
	session := s.session.String()
	opts := pipelineOptions{
		sim: openaisim.Config{Seed: int64(seed % (1 << 62)), RatePerMinute: s.ratePerMinute, SameSecondBurst: 3},
		extraEnv: map[string][]string{
			"poller": append(sourceEnv(), "AUDITPIPE_POLLER_SESSION_TIMEOUT="+session),
			"enricher": {"AUDITPIPE_ENRICHER_SESSION_TIMEOUT=" + session, "AUDITPIPE_ENRICHER_STALL_TIMEOUT=30s",
				"AUDITPIPE_ENRICHER_SHUTDOWN_TIMEOUT=15s", "AUDITPIPE_ENRICHER_TRANSACTION_END_TIMEOUT=10s"},
			"loader": {"AUDITPIPE_LOADER_CONSUMER__SESSION_TIMEOUT=" + session, "AUDITPIPE_LOADER_CONSUMER__STALL_TIMEOUT=30s",
				"AUDITPIPE_LOADER_SHUTDOWN_TIMEOUT=15s"},
		},
	}
	if external != nil {
		opts.externalKafka = []string{external.addr}
	}
	return startPipeline(t, opts)
}

// stopMerges waits for the loader's table and stops its merges, so that a
// duplicate row would stay visible to count().
func stopMerges(t *testing.T, p *pipeline) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := p.query("SYSTEM STOP MERGES openai_audit_logs")
		return err == nil
	}, time.Minute, 200*time.Millisecond, "the loader did not create openai_audit_logs")
}

// chaos injects the faults of one soak run.
type chaos struct {
	t       *testing.T
	p       *pipeline
	s       soakSettings
	rng     *rand.Rand
	restart brokerRestarter
	counts  map[string]int
	// exits counts, per service, the faults that end its process (kill -9,
	// SIGTERM): a service that restarts more often exited on its own.
	exits map[string]int

	mu     sync.Mutex
	paused map[string]*time.Timer // service -> pending SIGCONT
	lastBr time.Time
}

func newChaos(t *testing.T, p *pipeline, s soakSettings, rng *rand.Rand, restart brokerRestarter) *chaos {
	return &chaos{t: t, p: p, s: s, rng: rng, restart: restart, counts: map[string]int{}, exits: map[string]int{}, paused: map[string]*time.Timer{}}
}

// faultKinds are drawn with these weights.
var faultKinds = []struct {
	name   string
	weight int
}{{"kill", 4}, {"term", 2}, {"pause", 2}, {"broker", 1}}

// run injects faults for d and returns when the last one was injected.
func (c *chaos) run(d time.Duration) time.Time {
	end := time.Now().Add(d)
	last := time.Now()
	for {
		gap := c.s.minGap + time.Duration(c.rng.Int64N(int64(c.s.maxGap-c.s.minGap)+1))
		if time.Now().Add(gap).After(end) {
			return last
		}
		time.Sleep(gap)
		if burst := c.rng.IntN(4); burst == 0 {
			c.p.sim.Generate(20 + c.rng.IntN(60))
		}
		c.inject()
		last = time.Now()
	}
}

func (c *chaos) pick() string {
	total := 0
	for _, k := range faultKinds {
		total += k.weight
	}
	n := c.rng.IntN(total)
	for _, k := range faultKinds {
		if n < k.weight {
			return k.name
		}
		n -= k.weight
	}
	return faultKinds[0].name
}

// inject applies one fault drawn from the seed's generator.
func (c *chaos) inject() {
	kind := c.pick()
	svc := devstack.Services[c.rng.IntN(len(devstack.Services))]
	if kind == "broker" {
		c.mu.Lock()
		recent := time.Since(c.lastBr) < 45*time.Second
		c.mu.Unlock()
		if recent {
			kind = "kill" // keep broker restarts apart so the groups can settle in between
		}
	}
	c.mu.Lock()
	_, paused := c.paused[svc]
	c.mu.Unlock()
	if paused && kind != "broker" {
		return
	}
	proc := c.p.stack.Procs[svc]
	c.counts[kind]++
	switch kind {
	case "kill":
		c.t.Logf("fault: kill -9 %s", svc)
		_ = proc.Signal(syscall.SIGKILL)
		c.exits[svc]++
	case "term":
		c.t.Logf("fault: SIGTERM %s", svc)
		_ = proc.Signal(syscall.SIGTERM)
		c.exits[svc]++
	case "pause":
		d := c.s.session + 2*time.Second + time.Duration(c.rng.Int64N(int64(4*time.Second)))
		c.t.Logf("fault: SIGSTOP %s for %s", svc, d)
		_ = proc.Signal(syscall.SIGSTOP)
		c.mu.Lock()
		c.paused[svc] = time.AfterFunc(d, func() { c.cont(svc) })
		c.mu.Unlock()
	case "broker":
		c.t.Logf("fault: broker restart")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		start := time.Now()
		err := c.restart(ctx)
		cancel()
		require.NoError(c.t, err, "restarting the broker")
		c.t.Logf("broker restarted in %s", time.Since(start).Round(time.Millisecond))
		c.mu.Lock()
		c.lastBr = time.Now()
		c.mu.Unlock()
	}
}

func (c *chaos) cont(svc string) {
	c.mu.Lock()
	delete(c.paused, svc)
	c.mu.Unlock()
	_ = c.p.stack.Procs[svc].Signal(syscall.SIGCONT)
}

// resumeAll continues every paused service now.
func (c *chaos) resumeAll() {
	c.mu.Lock()
	var svcs []string
	for svc, timer := range c.paused {
		timer.Stop()
		svcs = append(svcs, svc)
	}
	c.mu.Unlock()
	for _, svc := range svcs {
		c.cont(svc)
	}
}

// progressMonitor measures the longest time during which events were
// pending (served by the API, not yet in ClickHouse) and none arrived.
type progressMonitor struct {
	stopCh  chan struct{}
	done    chan struct{}
	longest time.Duration
}

func startProgressMonitor(p *pipeline) *progressMonitor {
	m := &progressMonitor{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		last, since := -1, time.Now()
		for {
			select {
			case <-m.stopCh:
				return
			case <-time.After(time.Second):
			}
			out, err := p.query("SELECT uniqExact(eventID) FROM openai_audit_logs")
			if err != nil {
				continue
			}
			loaded, _ := strconv.Atoi(strings.TrimSpace(out))
			served := len(p.sim.GroundTruth())
			switch {
			case loaded != last || loaded >= served:
				last, since = loaded, time.Now()
			default:
				m.longest = max(m.longest, time.Since(since))
			}
		}
	}()
	return m
}

func (m *progressMonitor) stop() time.Duration {
	close(m.stopCh)
	<-m.done
	return m.longest
}

// exactlyOnceBeforeMerges checks, with merges stopped, that every served
// event has exactly one row (count() = uniqExact(eventID)), also with
// FINAL, and that the ids are exactly the served ones; it returns the lost
// and duplicated counts.
func exactlyOnceBeforeMerges(t *testing.T, p *pipeline, truth []openaisim.Event) (lost, duplicated int) {
	t.Helper()
	want := make([]string, 0, len(truth))
	for _, e := range truth {
		want = append(want, e.ID)
	}
	sort.Strings(want)
	got := strings.Fields(p.mustQuery("SELECT eventID FROM openai_audit_logs ORDER BY eventID FORMAT TSV"))
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range want {
		switch n := seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	counts := p.mustQuery("SELECT count(), uniqExact(eventID) FROM openai_audit_logs FORMAT TSV")
	final := p.mustQuery("SELECT count() FROM openai_audit_logs FINAL")
	assert.Equal(t, fmt.Sprintf("%d\t%d", len(want), len(want)), counts, "before merges: count() = uniqExact(eventID) = events served")
	assert.Equal(t, strconv.Itoa(len(want)), final, "count() with FINAL")
	assert.Zero(t, lost, "lost events")
	assert.Zero(t, duplicated, "duplicated rows")
	uniq := slices.Compact(slices.Clone(got))
	assert.Equal(t, want, uniq, "exactly the served event ids")
	return lost, duplicated
}

// waitGroupsCaughtUp waits until the enricher's and the loader's groups
// have committed up to the end of every partition they read (one short of
// it when a transaction marker ends the partition).
func waitGroupsCaughtUp(t *testing.T, p *pipeline, timeout time.Duration) {
	t.Helper()
	adm := admin(t, p)
	for _, gt := range [][2]string{{"auditpipe-enricher", "openai-audit-raw"}, {"auditpipe-loader", "openai-audit-enriched"}} {
		waitFor(t, timeout, fmt.Sprintf("group %s to catch up on %s", gt[0], gt[1]), func() (bool, string) {
			behind := groupBehind(adm, gt[0], gt[1])
			return len(behind) == 0, strings.Join(behind, "; ")
		})
	}
}

// groupBehind lists the partitions of topic where group's committed offset
// is more than one below the last stable offset (or unreadable).
func groupBehind(adm *kadm.Client, group, topic string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return []string{err.Error()}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return []string{err.Error()}
	}
	var behind []string
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		if o.Offset > 0 && (!ok || c.At < o.Offset-1) {
			behind = append(behind, fmt.Sprintf("%d: committed %d, end %d", o.Partition, c.At, o.Offset))
		}
	})
	return behind
}

// waitAllReady waits until every service's /readyz answers 200.
func waitAllReady(t *testing.T, p *pipeline, timeout time.Duration) {
	t.Helper()
	for _, svc := range devstack.Services {
		url := "http://" + p.stack.AdminAddr(svc) + "/readyz"
		waitFor(t, timeout, svc+" /readyz", func() (bool, string) {
			resp, err := http.Get(url)
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return resp.StatusCode == http.StatusOK, resp.Status + " " + string(body)
		})
	}
}

// waitFor polls cond until it holds, failing t after timeout with what
// cond said last.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %s", timeout, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestCrashLoopRecovers kills the loader and the enricher with kill -9,
// alternately, every 2 to 4 seconds, while events flow and a supervisor
// restarts them. Every restart must take its place in the consumer group
// back at once (static membership), so that within 30 s of the last kill
// every event is in ClickHouse. With dynamic members (no instance ids) the
// groups did not settle for minutes: on kfake a dead member can keep its
// partitions until the next rebalance (see TestGroupGhostMember), and even
// on Apache Kafka each restart costs a rebalance that waits for the dead
// member's session timeout.
func TestCrashLoopRecovers(t *testing.T) {
	p := startSoakPipeline(t, 7, shortSoak, nil)
	p.stack.Supervise(devstack.SupervisePolicy{Backoff: 200 * time.Millisecond, MaxBackoff: time.Second, StableAfter: 10 * time.Second})
	liveCtx, stopLive := context.WithCancel(context.Background())
	defer stopLive()
	p.sim.Start(liveCtx)
	p.waitCount("SELECT uniqExact(eventID) > 0 FROM openai_audit_logs", 1, 2*time.Minute)

	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 8 {
		svc := []string{"loader", "enricher"}[i%2]
		require.NoError(t, p.stack.Procs[svc].Signal(syscall.SIGKILL))
		time.Sleep(2*time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
	}
	stopLive()
	lastKill := time.Now()
	truth := p.sim.GroundTruth()
	p.waitCount("SELECT uniqExact(eventID) FROM openai_audit_logs", len(truth), 30*time.Second)
	t.Logf("%d events loaded %s after the last of 8 kills", len(truth), time.Since(lastKill).Round(100*time.Millisecond))
	waitGroupsCaughtUp(t, p, 30*time.Second)
	waitAllReady(t, p, 30*time.Second)
}
