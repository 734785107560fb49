package collect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/poller/internal/health"
	"github.com/auditpipe/auditpipe/poller/internal/state"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// fakeAPI stands in for the audit-log endpoint: it lists its events newest
// first with effective_at[gte]/[lt], tenant_only and after=<last id>, in
// pages of q.Limit. Scripted errors are returned first, one per call.
type fakeAPI struct {
	mu      sync.Mutex
	events  []fakeEvent
	errs    []error
	queries []upstream.Query
}

type fakeEvent struct {
	id     string
	eff    int64
	tenant bool
}

func (f *fakeAPI) add(evs ...fakeEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, evs...)
	// Newest first; the API breaks ties by an order of its own (here: id).
	slices.SortStableFunc(f.events, func(a, b fakeEvent) int {
		if a.eff != b.eff {
			return int(b.eff - a.eff)
		}
		return -compareStrings(a.id, b.id)
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fakeAPI) failNext(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, errs...)
}

func (f *fakeAPI) List(_ context.Context, q upstream.Query) (upstream.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return upstream.Page{}, err
	}
	var match []fakeEvent
	for _, e := range f.events {
		if e.tenant == q.TenantOnly && e.eff >= q.GTE && (q.LT == 0 || e.eff < q.LT) {
			match = append(match, e)
		}
	}
	if q.After != "" {
		i := slices.IndexFunc(match, func(e fakeEvent) bool { return e.id == q.After })
		if i < 0 {
			return upstream.Page{}, &upstream.Error{Class: upstream.ClassClient, Status: 400, Message: "invalid cursor"}
		}
		match = match[i+1:]
	}
	page := upstream.Page{Documents: 1, HasMore: len(match) > q.Limit}
	match = match[:min(len(match), q.Limit)]
	for _, e := range match {
		page.Items = append(page.Items, upstream.Item{ID: e.id, EffectiveAt: e.eff, Raw: []byte(fmt.Sprintf(`{"id":%q,"effective_at":%d}`, e.id, e.eff))})
	}
	if len(match) > 0 {
		first, last := match[0].id, match[len(match)-1].id
		page.FirstID, page.LastID = &first, &last
	}
	return page, nil
}

// fakeCommitter records committed transactions; it fails while failing is
// set, committing nothing.
type fakeCommitter struct {
	txns    [][]*kgo.Record
	failing error
}

func (f *fakeCommitter) Commit(_ context.Context, recs []*kgo.Record) error {
	if f.failing != nil {
		return f.failing
	}
	f.txns = append(f.txns, slices.Clone(recs))
	return nil
}

// published returns the ids written to the raw topic, in order.
func (f *fakeCommitter) published() []string {
	var ids []string
	for _, txn := range f.txns {
		for _, r := range txn {
			if r.Topic == "raw" {
				ids = append(ids, string(r.Key))
			}
		}
	}
	return ids
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testSource() Source {
	return Source{
		ID: "src-1", WorkspaceID: "ws-1", TTLDays: 30,
		Streams:        []Stream{{Name: "default"}},
		PollInterval:   10 * time.Second,
		Backfill:       24 * time.Hour,
		RescanWindow:   24 * time.Hour,
		RescanInterval: 10 * time.Minute,
		Overlap:        2 * time.Minute,
		Slice:          time.Hour,
		MaxSliceEvents: 1000,
		PageSize:       7,
		DedupCapacity:  100_000,
		StateLimit:     900 << 10,
		AuthRetry:      5 * time.Minute,
		ErrorRetry:     30 * time.Second,
	}
}

type harness struct {
	api   *fakeAPI
	com   *fakeCommitter
	clk   *clock
	m     *Metrics
	reg   *prometheus.Registry
	codec *state.Codec
	col   *Collector
	src   Source
}

func newHarness(t *testing.T, src Source) *harness {
	t.Helper()
	codec, err := state.NewCodec()
	require.NoError(t, err)
	t.Cleanup(codec.Close)
	reg := prometheus.NewRegistry()
	h := &harness{api: &fakeAPI{}, com: &fakeCommitter{}, clk: &clock{t: t0}, m: NewMetrics(reg), reg: reg, codec: codec, src: src}
	h.col = h.collector(state.New(src.ID))
	return h
}

func (h *harness) collector(st state.State) *Collector {
	return New(h.src, st, Options{
		API: h.api, Committer: h.com, Codec: h.codec,
		Topics:  Topics{Raw: "raw", State: "state", StatePartition: 3},
		Metrics: h.m, Version: "test", Now: h.clk.Now,
	})
}

func (h *harness) cycle(t *testing.T) time.Duration {
	t.Helper()
	wait, err := h.col.Cycle(context.Background())
	require.NoError(t, err)
	return wait
}

// spread returns n events with ids prefix-0… whose effective_at go from
// from (oldest) by step seconds.
func spread(prefix string, n int, from time.Time, step int64) []fakeEvent {
	evs := make([]fakeEvent, n)
	for i := range evs {
		evs[i] = fakeEvent{id: fmt.Sprintf("%s-%04d", prefix, i), eff: from.Unix() + int64(i)*step}
	}
	return evs
}

func ids(evs []fakeEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.id
	}
	return out
}

func firstRaw(t *testing.T, c *fakeCommitter) *kgo.Record {
	t.Helper()
	for _, txn := range c.txns {
		for _, r := range txn {
			if r.Topic == "raw" {
				return r
			}
		}
	}
	t.Fatal("nothing published")
	return nil
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestBackfillPublishesEveryEventOnceOldestFirst(t *testing.T) {
	h := newHarness(t, testSource())
	old := spread("old", 5, t0.Add(-30*time.Hour), 60) // before the backfill window
	in := spread("evt", 300, t0.Add(-20*time.Hour), 233)
	h.api.add(old...)
	h.api.add(in...)

	wait := h.cycle(t)

	assert.Equal(t, h.src.PollInterval, wait)
	assert.Equal(t, ids(in), h.com.published(), "every event in the window once, oldest first; none older")
	require.Greater(t, len(h.com.txns), 10, "the 24 h backfill is walked in 1 h slices, one transaction each")
	for i, txn := range h.com.txns {
		last := txn[len(txn)-1]
		assert.Equal(t, "state", last.Topic, "txn %d ends with the state record", i)
		assert.Equal(t, int32(3), last.Partition)
		assert.Equal(t, "src-1", string(last.Key))
		st, err := h.codec.Decode(last.Value)
		require.NoError(t, err)
		assert.Equal(t, i == len(h.com.txns)-1, st.Streams["default"].Initialized, "only the last slice completes the backfill")
	}
	st := h.col.State()
	assert.Equal(t, t0.Unix(), st.Streams["default"].Cursor)
	assert.Equal(t, 300, st.Seen.Len())
	assert.InDelta(t, 300, testutil.ToFloat64(h.m.published.WithLabelValues("src-1")), 0)
	assert.InDelta(t, 0, testutil.ToFloat64(h.m.lag.WithLabelValues("src-1")), 0)

	r := firstRaw(t, h.com)
	for key, want := range map[string]string{"workspace_id": "ws-1", "source_id": "src-1", "source_type": "openai", "source_ttl": "30", "poller_version": "test", "received_at": t0.Format(time.RFC3339Nano)} {
		got, ok := header(r, key)
		assert.True(t, ok, key)
		assert.Equal(t, want, got, key)
	}
	_, hasTags := header(r, "tags")
	assert.False(t, hasTags, "no tags header without tags")
	assert.JSONEq(t, `{"id":"evt-0000","effective_at":`+fmt.Sprint(in[0].eff)+`}`, string(r.Value), "the raw event bytes as served")
}

func TestTagsHeader(t *testing.T) {
	src := testSource()
	src.Tags = map[string]string{"env": "prod", "team": "sec"}
	h := newHarness(t, src)
	h.api.add(spread("e", 1, t0.Add(-time.Minute), 1)...)
	h.cycle(t)
	require.Len(t, h.com.published(), 1)
	tags, ok := header(firstRaw(t, h.com), "tags")
	require.True(t, ok)
	assert.JSONEq(t, `{"env":"prod","team":"sec"}`, tags)
}

func TestNextCycleSkipsWhatTheOverlapFetchesAgain(t *testing.T) {
	h := newHarness(t, testSource())
	h.api.add(spread("a", 20, t0.Add(-90*time.Second), 3)...) // inside the next cycle's overlap
	h.cycle(t)
	require.Len(t, h.com.published(), 20)
	commits := len(h.com.txns)

	// Nothing new: the overlap re-reads 20 events and publishes none; no
	// transaction is needed when neither events nor the cursor change.
	h.cycle(t)
	assert.Len(t, h.com.published(), 20)
	assert.Equal(t, commits, len(h.com.txns))
	assert.InDelta(t, 20, testutil.ToFloat64(h.m.duplicates.WithLabelValues("src-1")), 0)

	// New events, some in the same second as the newest published one.
	h.clk.advance(10 * time.Second)
	fresh := []fakeEvent{{id: "b-same-second", eff: t0.Unix() - 90 + 19*3}, {id: "b-new", eff: t0.Unix() + 5}}
	h.api.add(fresh...)
	h.cycle(t)
	assert.Equal(t, append(ids(spread("a", 20, t0.Add(-90*time.Second), 3)), "b-same-second", "b-new"), h.com.published())
	assert.Equal(t, t0.Unix()+5, h.col.State().Streams["default"].Cursor, "the cursor is the newest effective_at seen")
	for _, q := range h.api.queries[len(h.api.queries)-1:] {
		assert.Equal(t, t0.Unix()-120, q.GTE, "the query starts at the cursor minus the overlap")
	}
}

func TestLateArrivalIsCaughtByTheRescan(t *testing.T) {
	h := newHarness(t, testSource())
	h.api.add(spread("a", 10, t0.Add(-5*time.Hour), 600)...)
	h.cycle(t)
	require.Len(t, h.com.published(), 10)

	// An event appears now with an effective_at three hours back: beyond
	// the overlap, so only the re-scan can find it.
	h.api.add(fakeEvent{id: "late", eff: t0.Add(-3 * time.Hour).Unix()})
	h.clk.advance(5 * time.Minute)
	h.cycle(t)
	assert.NotContains(t, h.com.published(), "late", "the re-scan is not due yet")

	h.clk.advance(6 * time.Minute) // 11 min since the backfill: due
	h.cycle(t)
	assert.Equal(t, "late", h.com.published()[10])
	assert.Equal(t, h.clk.t.Unix(), h.col.State().Streams["default"].LastRescan)

	h.clk.advance(11 * time.Minute) // the next re-scan finds nothing new
	h.cycle(t)
	assert.Len(t, h.com.published(), 11)
}

func TestDenseSlicesAreSplit(t *testing.T) {
	src := testSource()
	src.MaxSliceEvents = 10
	h := newHarness(t, src)
	spreadOut := spread("s", 120, t0.Add(-50*time.Minute), 20) // 120 events in 40 min, one slice of 1 h
	burst := make([]fakeEvent, 25)                             // 25 in one second: cannot be split
	for i := range burst {
		burst[i] = fakeEvent{id: fmt.Sprintf("burst-%02d", i), eff: t0.Add(-5 * time.Minute).Unix()}
	}
	h.api.add(spreadOut...)
	h.api.add(burst...)
	h.cycle(t)

	// Every slice up to the burst is split to at most MaxSliceEvents and
	// committed; the one second holding more fails the cycle (pagination)
	// instead of lifting the bound.
	assert.ElementsMatch(t, ids(spreadOut), h.com.published(), "each event before the burst once")
	for _, txn := range h.com.txns {
		assert.LessOrEqual(t, len(txn)-1, 10, "a slice holds at most MaxSliceEvents")
	}
	assert.InDelta(t, 1, testutil.ToFloat64(h.m.errors.WithLabelValues("src-1", ClassPagination)), 0)

	// Raised as the error says, the bound takes the burst.
	h.src.MaxSliceEvents = 30
	h.col = h.collector(h.col.State())
	h.cycle(t)
	got := h.com.published()
	assert.Len(t, got, 145)
	assert.ElementsMatch(t, append(ids(spreadOut), ids(burst)...), got, "each event once")
}

func TestTenantStreamIsSeparate(t *testing.T) {
	src := testSource()
	src.Streams = []Stream{{Name: "default"}, {Name: "tenant", TenantOnly: true}}
	h := newHarness(t, src)
	h.api.add(fakeEvent{id: "org", eff: t0.Add(-time.Hour).Unix()}, fakeEvent{id: "ten", eff: t0.Add(-time.Hour).Unix(), tenant: true})
	h.cycle(t)
	assert.ElementsMatch(t, []string{"org", "ten"}, h.com.published())
	st := h.col.State()
	assert.True(t, st.Streams["default"].Initialized)
	assert.True(t, st.Streams["tenant"].Initialized)
}

func TestFailedCommitLeavesStateAndResumes(t *testing.T) {
	h := newHarness(t, testSource())
	evs := spread("e", 30, t0.Add(-2*time.Hour), 120)
	h.api.add(evs...)
	h.com.failing = errors.New("broker gone")

	_, err := h.col.Cycle(context.Background())
	require.ErrorIs(t, err, ErrKafka)
	assert.ErrorContains(t, err, "broker gone")
	assert.Empty(t, h.com.published())
	assert.False(t, h.col.State().Streams["default"].Initialized, "state advances only with a commit")
	assert.InDelta(t, 1, testutil.ToFloat64(h.m.txns.WithLabelValues("src-1", "failed")), 0)

	// As the source runner does: a new collector from the state last
	// committed (none), once Kafka is back.
	h.com.failing = nil
	h.col = h.collector(state.New("src-1"))
	h.cycle(t)
	assert.Equal(t, ids(evs), h.com.published())
}

func TestFailedCommitNeverMarksIdsPublished(t *testing.T) {
	h := newHarness(t, testSource())
	first := spread("a", 10, t0.Add(-2*time.Hour), 60)
	h.api.add(first...)
	h.cycle(t)
	require.Equal(t, ids(first), h.com.published())
	before := h.col.State()
	seen := before.Seen.Len()

	h.clk.advance(time.Minute)
	later := spread("b", 5, t0.Add(-time.Minute), 10)
	h.api.add(later...)
	h.com.failing = errors.New("broker gone")
	_, err := h.col.Cycle(context.Background())
	require.ErrorIs(t, err, ErrKafka)

	st := h.col.State()
	for _, e := range later {
		assert.False(t, st.Seen.Contains(e.id), "%s is not published after a failed commit", e.id)
	}
	assert.Equal(t, seen, st.Seen.Len(), "the dedup memory is unchanged")
	assert.Equal(t, before.Streams, st.Streams)

	// Even the same collector, reused, publishes them once Kafka is back.
	h.com.failing = nil
	h.cycle(t)
	assert.Equal(t, append(ids(first), ids(later)...), h.com.published())
}

func TestAPIErrors(t *testing.T) {
	authErr := &upstream.Error{Class: upstream.ClassAuth, Status: 401, Message: "Missing scopes: api.audit_logs.read"}
	serverErr := &upstream.Error{Class: upstream.ClassServer, Status: 503, Attempts: 5}
	for _, tc := range []struct {
		name       string
		err        error
		wantWait   time.Duration
		wantHealth bool
		wantTenant bool // the tenant stream is still polled in the failing cycle
	}{
		{"auth stops the cycle and retries slowly", authErr, 5 * time.Minute, true, false},
		{"server error retries on the error schedule", serverErr, 30 * time.Second, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testSource()
			src.Streams = []Stream{{Name: "default"}, {Name: "tenant", TenantOnly: true}}
			h := newHarness(t, src)
			h.api.add(spread("e", 3, t0.Add(-time.Minute), 1)...)
			// The first request of the default stream fails.
			h.api.failNext(tc.err)

			wait := h.cycle(t)
			if tc.wantHealth {
				assert.Equal(t, tc.wantWait, wait)
			} else {
				// The shared backoff: between half the first delay and it.
				assert.GreaterOrEqual(t, wait, tc.wantWait/2)
				assert.LessOrEqual(t, wait, tc.wantWait)
			}
			v := h.col.o.Health.Verdict(h.clk.t)
			assert.Equal(t, tc.wantHealth, v.State == health.Failing, "a refused key fails the source at once; one server error does not")
			if tc.wantHealth {
				assert.Contains(t, v.String(), "Admin Keys")
			}
			if tc.wantHealth {
				assert.InDelta(t, 0, testutil.ToFloat64(h.m.authOK.WithLabelValues("src-1")), 0)
			}
			tenantPolled := slices.ContainsFunc(h.api.queries, func(q upstream.Query) bool { return q.TenantOnly })
			assert.Equal(t, tc.wantTenant, tenantPolled, "an auth failure skips the other stream; a server error does not")
			assert.Empty(t, h.com.published(), "nothing of the failed stream is published")

			// The next cycle succeeds and clears the health.
			h.clk.advance(wait)
			wait = h.cycle(t)
			assert.Equal(t, src.PollInterval, wait)
			assert.Equal(t, health.OK, h.col.o.Health.Verdict(h.clk.t).State)
			assert.InDelta(t, 1, testutil.ToFloat64(h.m.authOK.WithLabelValues("src-1")), 0)
			assert.Len(t, h.com.published(), 3)
		})
	}
}

func TestDedupOverflowNeverRepublishes(t *testing.T) {
	src := testSource()
	src.DedupCapacity = 50
	h := newHarness(t, src)
	evs := spread("e", 120, t0.Add(-3*time.Hour), 60)
	h.api.add(evs...)
	h.cycle(t)
	require.Equal(t, ids(evs), h.com.published())
	st := h.col.State()
	assert.LessOrEqual(t, st.Seen.Len(), 50)
	assert.Positive(t, st.Floor, "forgotten ids are covered by the floor")
	assert.Positive(t, testutil.ToFloat64(h.m.dedupEvicted.WithLabelValues("src-1")))

	// A re-scan walks the whole window again: nothing is published twice.
	h.clk.advance(11 * time.Minute)
	h.cycle(t)
	assert.Len(t, h.com.published(), 120)
}

func TestRunStopsWithContext(t *testing.T) {
	h := newHarness(t, testSource())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.col.Run(ctx) }()
	require.Eventually(t, func() bool {
		h.api.mu.Lock()
		defer h.api.mu.Unlock()
		return len(h.api.queries) > 0
	}, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
