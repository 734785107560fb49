package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// gauge reads auditpipe_poller_sources_unhealthy{state}.
func unhealthy(t *testing.T, p *poller, state string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "auditpipe_poller_sources_unhealthy" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == state {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func TestOversizedEventIsDeadLetteredAndCollectionMovesOn(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 21, Backlog: 40, BacklogSpan: 2 * time.Hour})
	huge := fmt.Sprintf(`{"object":"organization.audit_log","id":"audit_log-huge","type":"api_key.created","effective_at":%d,"actor":null,"pad":%q}`,
		time.Now().Add(-time.Hour).Unix(), strings.Repeat("x", 1_500_000))
	_, err := sim.AddRaw([]byte(huge))
	require.NoError(t, err)
	p := startPoller(t, testConfig(cl, source("org-big", sim, goodKey)))

	dlq := cl.ConsumeAll(t, "openai-audit-dlq", 1, 30*time.Second)
	require.Len(t, dlq, 1, "the oversized event is dead-lettered")
	d := dlq[0]
	assert.Equal(t, "audit_log-huge", string(d.Key))
	assert.Equal(t, huge[:16<<10], string(d.Value))
	assert.Equal(t, "poller", header(d, "dlq_stage"))
	assert.Equal(t, "too_large", header(d, "dlq_reason"))
	assert.Equal(t, "openai-audit-raw", header(d, "dlq_topic"))
	assert.Equal(t, "org-big", header(d, "source_id"))
	assert.Contains(t, header(d, "dlq_error"), "event audit_log-huge of type api_key.created is 15")
	assert.Contains(t, header(d, "dlq_error"), "over the 1000012 bytes the raw topic takes")

	// Collection moves on: every other event, and the live ones after it.
	sim.Generate(10)
	want := len(sim.GroundTruth()) - 1
	var raw []string
	require.Eventually(t, func() bool {
		raw = raw[:0]
		for _, r := range cl.ConsumeAll(t, "openai-audit-raw", want, 2*time.Second) {
			raw = append(raw, string(r.Key))
		}
		return len(raw) >= want
	}, 30*time.Second, 100*time.Millisecond)
	assert.Len(t, raw, want, "each other event once")
	assert.NotContains(t, raw, "audit_log-huge")
	time.Sleep(300 * time.Millisecond) // a few more cycles and re-scans
	assert.Len(t, cl.ConsumeAll(t, "openai-audit-dlq", 0, time.Second), 1, "dead-lettered once: remembered as handled")
	assert.InDelta(t, 1, metricValue(t, p, "auditpipe_dlq_records_total"), 0)
	assert.NoError(t, p.admin.Ready(context.Background())["sources"])
}

func TestRecordLimitFollowsTheRawTopic(t *testing.T) {
	cl := newCluster(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 24, Backlog: 10, BacklogSpan: time.Hour})
	mid := fmt.Sprintf(`{"object":"organization.audit_log","id":"audit_log-mid","type":"project.created","effective_at":%d,"actor":null,"pad":%q}`,
		time.Now().Add(-30*time.Minute).Unix(), strings.Repeat("m", 300_000))
	_, err := sim.AddRaw([]byte(mid))
	require.NoError(t, err)
	cfg := testConfig(cl, source("org-mid", sim, goodKey))
	cfg.Topics.Raw.Configs = map[string]string{"max_message_bytes": "200000"} // under the producer's limit
	startPoller(t, cfg)

	dlq := cl.ConsumeAll(t, "openai-audit-dlq", 1, 30*time.Second)
	require.Len(t, dlq, 1, "300 KB is over this raw topic's 200,000 bytes")
	assert.Equal(t, "audit_log-mid", string(dlq[0].Key))
	assert.Contains(t, header(dlq[0], "dlq_error"), "over the 200000 bytes the raw topic takes")
	want := len(sim.GroundTruth()) - 1
	assert.Len(t, cl.ConsumeAll(t, "openai-audit-raw", want, 30*time.Second), want)
}

func TestReadinessFollowsProgressForAnyFailure(t *testing.T) {
	cases := []struct {
		name  string
		fault openaisim.Fault
		opts  []Option
		want  string
		state string
	}{
		{"server errors without end", openaisim.Fault{Kind: openaisim.FaultServerError, Status: 503, Count: -1},
			nil, "failing (", "failing"},
		// Each attempt hangs until the 5 s request timeout: no cycle of the
		// sick source ends for 10 s, while the fine one's end every few
		// milliseconds (well under a second even with -race on a busy
		// machine).
		{"requests that never answer", openaisim.Fault{Kind: openaisim.FaultTimeout, Delay: 10 * time.Second, Count: -1},
			[]Option{WithStallAfter(3 * time.Second)}, "stalled: no progress for", "stalled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := newCluster(t)
			sick := openaisimtest.Start(t, openaisim.Config{Seed: 22, Backlog: 20, BacklogSpan: time.Hour})
			fine := openaisimtest.Start(t, openaisim.Config{Seed: 23, Backlog: 20, BacklogSpan: time.Hour})
			cfg := testConfig(cl, source("org-sick", sick, goodKey), source("org-fine", fine, goodKey))
			cfg.Collection.MaxAttempts = 2
			// No budget: a slice slot per source. Under the default budget
			// the two share one, which the sick source holds while its
			// requests hang, and the fine one is (rightly) stalled too.
			cfg.Memory.Limit = 0
			p := startPoller(t, cfg, tc.opts...)
			waitFor(t, cl, sick, []string{"org-sick"}, 30*time.Second)
			waitFor(t, cl, fine, []string{"org-fine"}, 30*time.Second)
			require.NoError(t, p.admin.Ready(context.Background())["sources"])

			require.NoError(t, sick.ScheduleFault(tc.fault))
			var err error
			require.Eventually(t, func() bool {
				err = p.admin.Ready(context.Background())["sources"]
				return err != nil
			}, 20*time.Second, 20*time.Millisecond, "readiness turns false")
			assert.Contains(t, err.Error(), "source org-sick: "+tc.want)
			assert.NotContains(t, err.Error(), "org-fine")
			assert.InDelta(t, 1, unhealthy(t, p, tc.state), 0, "counted")

			sick.ClearFaults()
			require.Eventually(t, func() bool { return p.admin.Ready(context.Background())["sources"] == nil }, 30*time.Second, 20*time.Millisecond,
				"ready again once the source makes progress")
			assert.InDelta(t, 0, unhealthy(t, p, tc.state), 0)
		})
	}
}

func TestEndlessPaginationMakesTheSourceNotReady(t *testing.T) {
	cl := newCluster(t)
	var requests atomic.Int64
	eff := time.Now().Add(-30 * time.Minute).Unix()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		// has_more forever, and the same cursor: the red team's upstream.
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "has_more": true, "first_id": "c", "last_id": "c",
			"data": []map[string]any{{"id": "loop", "type": "x.y", "effective_at": eff}}})
	}))
	t.Cleanup(api.Close)
	src := SourceConfig{WorkspaceID: "ws", SourceID: "org-loop", AdminKey: config.NewSecret(goodKey), BaseURL: api.URL + "/v1", PageSize: 10}
	p := startPoller(t, testConfig(cl, src))
	var err error
	require.Eventually(t, func() bool {
		err = p.admin.Ready(context.Background())["sources"]
		return err != nil
	}, 20*time.Second, 20*time.Millisecond)
	assert.Contains(t, err.Error(), "source org-loop: failing (3 in a row): pagination: the API's pages do not end")
	assert.NotContains(t, err.Error(), `"c"`, "no upstream text is served")
	assert.GreaterOrEqual(t, metricValue(t, p, "auditpipe_poller_errors_total"), 3.0)
	n := requests.Load()
	assert.Empty(t, cl.ConsumeAll(t, "openai-audit-raw", 0, time.Second))
	assert.Less(t, n, int64(100), "each attempt stops at the repeated cursor: a few requests per cycle")
}
