package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
	"github.com/auditpipe/auditpipe/poller/internal/collect"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// crashingCommitter simulates a crash at a chosen step of some commits.
type crashingCommitter struct {
	inner collect.Committer
	n     *atomic.Int64
}

var errCrash = errors.New("simulated crash")

func (c crashingCommitter) Commit(ctx context.Context, recs []*kgo.Record) error {
	switch n := c.n.Add(1); {
	case n%7 == 2: // crash before anything is produced
		return errCrash
	case n%7 == 4: // crash inside the transaction: records produced, never committed
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := c.inner.Commit(cctx, recs)
		return errors.Join(errCrash, err)
	case n%7 == 6: // crash right after the commit, before the state advanced in memory
		if err := c.inner.Commit(ctx, recs); err != nil {
			return err
		}
		return errCrash
	}
	return c.inner.Commit(ctx, recs)
}

func TestRestartAtEveryStep(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 2, Backlog: 600, BacklogSpan: 20 * time.Hour, SameSecondBurst: 4})
	cfg := testConfig(cl, source("org-r", sim, goodKey))
	cfg.Collection.Slice = time.Hour // ~20 transactions for the backfill
	var commits atomic.Int64
	crashing := WithCommitter(func(_ string, c collect.Committer) collect.Committer {
		return crashingCommitter{inner: c, n: &commits}
	})
	// The broker refuses a few EndTxn requests: the commit's outcome is
	// then unknown to the poller, which restarts from Kafka's state.
	var endTxn atomic.Int64
	cl.Kfake().ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cl.Kfake().KeepControl()
		if endTxn.Add(1)%5 != 3 {
			return nil, nil, false
		}
		resp := req.(*kmsg.EndTxnRequest).ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil, true
	})

	// Whole-process restarts in the middle of the backfill.
	p := startPoller(t, cfg, crashing)
	time.Sleep(300 * time.Millisecond)
	p.stop()
	p = startPoller(t, cfg, crashing)
	sim.Generate(20)
	time.Sleep(300 * time.Millisecond)
	p.stop()
	startPoller(t, cfg, crashing)
	sim.GenerateSpec(openaisim.Spec{N: 10, EffectiveAt: time.Now().Add(-3 * time.Hour)})
	waitFor(t, cl, sim, []string{"org-r"}, 60*time.Second)
	time.Sleep(500 * time.Millisecond)
	got := published(t, cl, 0, time.Second)
	requireExactlyOnce(t, got["org-r"], sim, "org-r")
	assert.Greater(t, commits.Load(), int64(7), "crashes were injected")
	assert.Greater(t, endTxn.Load(), int64(3), "EndTxn faults were injected")
}

func TestAPIFaultStorms(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 3, Backlog: 300, BacklogSpan: 6 * time.Hour})
	for _, f := range []openaisim.Fault{
		{Kind: openaisim.FaultRateLimit, Count: 15, Match: openaisim.Match{Probability: 0.3}},
		{Kind: openaisim.FaultServerError, Status: 503, Count: 10, Match: openaisim.Match{Probability: 0.3}},
		{Kind: openaisim.FaultServerError, Status: 500, Count: 8, Match: openaisim.Match{Param: "after"}},
		{Kind: openaisim.FaultConcatenated, Count: 5, Match: openaisim.Match{Every: 3}},
		{Kind: openaisim.FaultTruncated, Count: 3, Match: openaisim.Match{Every: 4}},
		{Kind: openaisim.FaultTruncated, Abort: true, Count: 2, Match: openaisim.Match{Every: 5}},
		{Kind: openaisim.FaultTimeout, Delay: 100 * time.Millisecond, Count: 2, Match: openaisim.Match{Every: 7}},
	} {
		require.NoError(t, sim.ScheduleFault(f))
	}
	cfg := testConfig(cl, source("org-f", sim, goodKey))
	cfg.Collection.MaxAttempts = 3 // some pages exhaust their attempts: the cycle fails and is retried whole
	startPoller(t, cfg)
	waitFor(t, cl, sim, []string{"org-f"}, 60*time.Second)
	sim.Generate(25)
	waitFor(t, cl, sim, []string{"org-f"}, 30*time.Second)
	got := published(t, cl, 0, time.Second)
	requireExactlyOnce(t, got["org-f"], sim, "org-f")
	assert.Empty(t, sim.Faults(), "every scheduled fault was hit")
}

func TestBadKeyDoesNotStopOtherSources(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 4, Backlog: 120, BacklogSpan: 2 * time.Hour})
	p := startPoller(t, testConfig(cl, source("org-good", sim, goodKey), source("org-bad", sim, "sk-proj-not-an-admin-key")))
	waitFor(t, cl, sim, []string{"org-good"}, 30*time.Second)
	require.Eventually(t, func() bool {
		return p.admin.Ready(context.Background())["sources"] != nil
	}, 10*time.Second, 20*time.Millisecond)
	err := p.admin.Ready(context.Background())["sources"]
	assert.Contains(t, err.Error(), "org-bad")
	assert.Contains(t, err.Error(), upstream.AuthMessage)
	assert.NotContains(t, err.Error(), "sk-proj-not-an-admin-key")
	assert.NotContains(t, err.Error(), "org-good")

	sim.Generate(10)
	waitFor(t, cl, sim, []string{"org-good"}, 20*time.Second)
	got := published(t, cl, 0, time.Second)
	requireExactlyOnce(t, got["org-good"], sim, "org-good")
	assert.Empty(t, got["org-bad"])
}

func TestTwoReplicasFailover(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 5, Backlog: 150, BacklogSpan: 3 * time.Hour})
	ids := []string{"org-1", "org-2", "org-3", "org-4", "org-5", "org-6"}
	var srcs []SourceConfig
	for _, id := range ids {
		srcs = append(srcs, source(id, sim, goodKey))
	}
	cfg := testConfig(cl, srcs...)
	a := startPoller(t, cfg)
	b := startPoller(t, cfg)
	waitFor(t, cl, sim, ids, 60*time.Second)

	a.stop() // replica A goes away: B takes over every source
	sim.Generate(20)
	waitFor(t, cl, sim, ids, 60*time.Second)

	c := startPoller(t, cfg) // a new replica joins and takes some sources
	sim.Generate(20)
	waitFor(t, cl, sim, ids, 60*time.Second)
	b.stop()
	sim.Generate(10)
	waitFor(t, cl, sim, ids, 60*time.Second)
	c.stop()

	got := published(t, cl, 0, time.Second)
	for _, id := range ids {
		requireExactlyOnce(t, got[id], sim, id)
	}
	// Every source's state lives in its own keyed record.
	states := cl.ConsumeAll(t, "auditpipe-poller-state", 0, time.Second)
	keys := map[string]bool{}
	for _, r := range states {
		keys[string(r.Key)] = true
	}
	assert.Len(t, keys, len(ids))
}
