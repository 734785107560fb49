package collect

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/poller/internal/health"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// scriptedAPI answers every query with page(q, call) whatever its window:
// a hostile or broken upstream. After maxCalls calls it fails, so that a
// collector that would page forever ends the test instead of hanging it.
type scriptedAPI struct {
	mu       sync.Mutex
	page     func(q upstream.Query, call int) upstream.Page
	calls    int
	maxCalls int
}

func (s *scriptedAPI) List(_ context.Context, q upstream.Query) (upstream.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.maxCalls > 0 && s.calls > s.maxCalls {
		return upstream.Page{}, &upstream.Error{Class: upstream.ClassServer, Status: 599, Message: "test guard: too many requests"}
	}
	return s.page(q, s.calls), nil
}

func (s *scriptedAPI) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func item(id string, eff int64) upstream.Item {
	return upstream.Item{ID: id, EffectiveAt: eff, Raw: []byte(fmt.Sprintf(`{"id":%q,"type":"x.y","effective_at":%d}`, id, eff))}
}

func ptr(s string) *string { return &s }

// lockedLog collects a collector's log lines.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestEndlessPaginationFailsTheSourceVisibly(t *testing.T) {
	eff := t0.Add(-30 * time.Minute).Unix()
	cases := []struct {
		name string
		page func(q upstream.Query, call int) upstream.Page
		// slice is the source's collection.slice: one second lifts no
		// limit.
		slice time.Duration
		want  string // in the logged error
	}{
		{
			name: "the same last_id forever",
			page: func(upstream.Query, int) upstream.Page {
				return upstream.Page{Items: []upstream.Item{item("a", eff)}, FirstID: ptr("a"), LastID: ptr("a"), HasMore: true, Documents: 1}
			},
			slice: time.Hour, want: "did not advance",
		},
		{
			name: "a cycle of cursors",
			page: func(q upstream.Query, _ int) upstream.Page {
				next := map[string]string{"": "c1", "c1": "c2", "c2": "c3", "c3": "c1"}[q.After]
				return upstream.Page{Items: []upstream.Item{item("i-"+next, eff)}, FirstID: ptr(next), LastID: ptr(next), HasMore: true, Documents: 1}
			},
			slice: time.Hour, want: "already requested",
		},
		{
			name: "fresh cursors forever in a one-second slice",
			page: func(_ upstream.Query, call int) upstream.Page {
				var items []upstream.Item
				for i := range 7 {
					items = append(items, item(fmt.Sprintf("e-%d-%d", call, i), eff))
				}
				return upstream.Page{Items: items, FirstID: ptr(items[0].ID), LastID: ptr(items[6].ID), HasMore: true, Documents: 1}
			},
			slice: time.Second, want: "max_slice_events",
		},
		{
			name: "short pages with fresh cursors",
			page: func(_ upstream.Query, call int) upstream.Page {
				id := fmt.Sprintf("s-%d", call)
				return upstream.Page{Items: []upstream.Item{item(id, eff)}, FirstID: ptr(id), LastID: ptr(id), HasMore: true, Documents: 1}
			},
			slice: time.Hour, want: "pages",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := testSource()
			src.Slice = tc.slice
			src.MaxSliceEvents = 100
			src.Backfill = time.Hour
			h := newHarness(t, src)
			api := &scriptedAPI{page: tc.page, maxCalls: 5000}
			var logs lockedLog
			h.col = New(h.src, h.col.State(), Options{
				API: api, Committer: h.com, Codec: h.codec, Topics: Topics{Raw: "raw", State: "state"},
				Metrics: h.m, Version: "test", Now: h.clk.Now, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})

			wait, err := h.col.Cycle(context.Background())
			require.NoError(t, err, "an upstream failure is not a Kafka failure")
			assert.Positive(t, wait)
			// Bounded: at most the pages a slice may take (2x what
			// max_slice_events needs at page_size 7, plus two) per
			// attempt of the slice.
			assert.Less(t, api.callCount(), 5000, "the collector stopped paging on its own")
			assert.LessOrEqual(t, api.callCount(), 2*(2*100/7+2)+2)
			assert.Empty(t, h.com.published(), "nothing of the endless slice is published")
			assert.InDelta(t, 1, testutil.ToFloat64(h.m.errors.WithLabelValues("src-1", "pagination")), 0)
			out := logs.String()
			assert.Contains(t, out, `"level":"ERROR"`)
			assert.Contains(t, out, `"source_id":"src-1"`)
			assert.Contains(t, out, tc.want)
		})
	}
}

func TestEventsOutsideTheWindowArePublishedOnce(t *testing.T) {
	// A broken upstream returns, whatever the window asked for, events at
	// effective_at 0, below zero and far in the future, with the normal
	// ones. Each must reach the raw topic once (the enricher dead-letters
	// the ones it cannot store), on the first backfill and later.
	for _, initialized := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream initialized %t", initialized), func(t *testing.T) {
			h := newHarness(t, testSource())
			if initialized {
				h.api.add(spread("first", 3, t0.Add(-time.Hour), 60)...)
				h.cycle(t)
				require.Len(t, h.com.published(), 3)
				h.clk.advance(10 * time.Second)
			}
			odd := []upstream.Item{item("zero", 0), item("negative", -5), item("future", 99_999_999_999)}
			api := &scriptedAPI{page: func(q upstream.Query, _ int) upstream.Page {
				p, _ := h.api.List(context.Background(), q)
				if q.After == "" {
					p.Items = append(odd, p.Items...)
				}
				return p
			}}
			h.col = New(h.src, h.col.State(), Options{API: api, Committer: h.com, Codec: h.codec,
				Topics: Topics{Raw: "raw", State: "state"}, Metrics: h.m, Version: "test", Now: h.clk.Now})
			h.cycle(t)
			h.clk.advance(10 * time.Second)
			h.cycle(t) // the same broken answers again: nothing twice
			h.clk.advance(11 * time.Minute)
			h.cycle(t) // a re-scan too
			got := h.com.published()
			for _, id := range []string{"zero", "negative", "future"} {
				assert.Equal(t, 1, strings.Count(strings.Join(got, " ")+" ", id+" "), "%s published exactly once: %v", id, got)
			}
		})
	}
}

func TestOversizedEventIsDeadLetteredInTheSliceTransaction(t *testing.T) {
	src := testSource()
	src.MaxRecordBytes = 1_000_000
	h := newHarness(t, src)
	h.col = New(h.src, h.col.State(), Options{API: h.api, Committer: h.com, Codec: h.codec,
		Topics: Topics{Raw: "raw", State: "state", DLQ: "dlq"}, Metrics: h.m, Version: "test", Now: h.clk.Now})
	eff := t0.Add(-10 * time.Minute).Unix()
	big := fmt.Sprintf(`{"id":"huge","type":"api_key.created","effective_at":%d,"pad":"%s"}`, eff, strings.Repeat("x", 1_500_000))
	fits := fmt.Sprintf(`{"id":"fits","type":"x.y","effective_at":%d,"pad":"%s"}`, eff, strings.Repeat("y", 990_000))
	api := &scriptedAPI{page: func(q upstream.Query, _ int) upstream.Page {
		p, _ := h.api.List(context.Background(), q)
		if q.GTE <= eff && (q.LT == 0 || eff < q.LT) && q.After == "" {
			p.Items = append(p.Items, upstream.Item{ID: "huge", EffectiveAt: eff, Raw: []byte(big)},
				upstream.Item{ID: "fits", EffectiveAt: eff, Raw: []byte(fits)})
		}
		return p
	}}
	h.col.o.API = api
	h.api.add(spread("ok", 5, t0.Add(-20*time.Minute), 60)...)

	h.cycle(t)
	var dlq []*kgo.Record
	var txnOf = map[string]int{}
	for i, txn := range h.com.txns {
		for _, r := range txn {
			txnOf[r.Topic+"/"+string(r.Key)] = i
			if r.Topic == "dlq" {
				dlq = append(dlq, r)
			}
		}
	}
	assert.NotContains(t, h.com.published(), "huge", "never produced to the raw topic")
	assert.Contains(t, h.com.published(), "fits", "an event under the limit is published whole")
	require.Len(t, dlq, 1)
	d := dlq[0]
	assert.Equal(t, "huge", string(d.Key))
	assert.Equal(t, big[:16<<10], string(d.Value), "a truncated body")
	assert.Equal(t, txnOf["raw/fits"], txnOf["dlq/huge"], "in the same transaction as its slice")
	for k, want := range map[string]string{"dlq_stage": "poller", "dlq_reason": "too_large", "dlq_topic": "raw", "dlq_partition": "-1", "dlq_offset": "-1", "source_id": "src-1"} {
		got, ok := header(d, k)
		assert.True(t, ok, k)
		assert.Equal(t, want, got, k)
	}
	msg, _ := header(d, "dlq_error")
	assert.Contains(t, msg, "event huge of type api_key.created is 1500")
	assert.Contains(t, msg, "1000000 bytes")
	assert.InDelta(t, 1, dlqCount(t, h, "too_large"), 0)
	assert.InDelta(t, 6, testutil.ToFloat64(h.m.published.WithLabelValues("src-1")), 0, "dead letters are not counted as published")

	// Handled: the next cycles move on and never dead-letter it again.
	h.clk.advance(10 * time.Second)
	h.cycle(t)
	h.clk.advance(11 * time.Minute)
	h.cycle(t)
	n := 0
	for _, txn := range h.com.txns {
		for _, r := range txn {
			if r.Topic == "dlq" {
				n++
			}
		}
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, health.OK, h.col.o.Health.Verdict(h.clk.t).State)
}

// dlqCount reads auditpipe_dlq_records_total{stage="poller",reason}.
func dlqCount(t *testing.T, h *harness, reason string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != contract.DLQMetricName {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["stage"] == "poller" && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{stage=poller,reason=%s}", contract.DLQMetricName, reason)
	return 0
}
