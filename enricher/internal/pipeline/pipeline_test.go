package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"))
}

func newTestPipeline(t *testing.T, c *kafkatest.Cluster, proc *Processor) *Pipeline {
	t.Helper()
	cfg := c.Config()
	base, err := cfg.Options(nil, nil, "test")
	require.NoError(t, err)
	p, err := New(Config{InputTopic: "openai-audit-raw", OutputTopic: "openai-audit-enriched", DLQTopic: "openai-audit-dlq",
		Group: "g", TransactionalID: "t1", MaxPollRecords: 100, EndTimeout: 5 * time.Second, RetryBackoff: 10 * time.Millisecond}, base, proc, nil, nil)
	require.NoError(t, err)
	return p
}

func runUntil(t *testing.T, p *Pipeline, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	require.Eventually(t, cond, 30*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestAbortedTransactionIsRetried fails the first produce to the output
// topic with a non-retriable error: the transaction aborts, the batch is
// processed again and every record comes out exactly once.
func TestAbortedTransactionIsRetried(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(2, "openai-audit-raw", "openai-audit-enriched", "openai-audit-dlq"))
	recs := rawRecords(t, 300)
	require.NoError(t, c.Client(t).ProduceSync(context.Background(), recs...).FirstErr())
	h := c.Kfake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "openai-audit-enriched", Err: kerr.InvalidRecord, Count: 1})

	p := newTestPipeline(t, c, newProcessor(t))
	runUntil(t, p, func() bool { return testutil.ToFloat64(p.m.out) >= float64(len(recs)) })
	assert.Equal(t, 1, h.Hits())
	assert.Positive(t, testutil.ToFloat64(p.m.aborted))

	out := c.ConsumeAll(t, "openai-audit-enriched", len(recs), 10*time.Second)
	require.Len(t, out, len(recs))
	seen := map[string]bool{}
	for _, r := range out {
		require.False(t, seen[string(r.Key)])
		seen[string(r.Key)] = true
	}
	// An uncommitted (read_uncommitted) reader sees the aborted attempt too.
	dirty := c.ConsumeAll(t, "openai-audit-enriched", 0, time.Second, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	assert.GreaterOrEqual(t, len(dirty), len(out))
}

// TestShutdownMidStreamResumesExactlyOnce stops the pipeline while work
// remains and resumes with a new one: nothing is lost or duplicated.
func TestShutdownMidStreamResumesExactlyOnce(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(2, "openai-audit-raw", "openai-audit-enriched", "openai-audit-dlq"))
	recs := rawRecords(t, 3000)
	require.NoError(t, c.Client(t).ProduceSync(context.Background(), recs...).FirstErr())
	proc := newProcessor(t)

	p1 := newTestPipeline(t, c, proc)
	runUntil(t, p1, func() bool { return testutil.ToFloat64(p1.m.out) >= 100 })
	p2 := newTestPipeline(t, c, proc)
	runUntil(t, p2, func() bool {
		return testutil.ToFloat64(p1.m.out)+testutil.ToFloat64(p2.m.out) >= float64(len(recs))
	})
	out := c.ConsumeAll(t, "openai-audit-enriched", len(recs), 10*time.Second)
	require.Len(t, out, len(recs))
	assert.Len(t, c.ConsumeAll(t, "openai-audit-enriched", 0, 500*time.Millisecond), len(recs))
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{}, nil, nil, nil, nil)
	require.Error(t, err)
	for _, s := range []string{"input topic", "output topic", "dlq topic", "group", "transactional id", "max poll records", "end timeout", "processor"} {
		assert.Contains(t, err.Error(), s)
	}
}

// TestUnmappedEventTypesMetric: records whose type has no category mapping
// are counted by type when their transaction commits; the label set stays
// within MaxUnmappedTypes (the rest count as "other"); mapped types are not
// counted.
func TestUnmappedEventTypesMetric(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(2, "openai-audit-raw", "openai-audit-enriched", "openai-audit-dlq"))
	mapped := rawRecords(t, 50)
	raw := func(id, typ string) *kgo.Record {
		r := *mapped[0]
		r.Key = []byte(id)
		r.Value = []byte(`{"id":"` + id + `","type":"` + typ + `","effective_at":1800000000,"actor":null,"` + typ + `":{"id":"x_1","widget_id":"w_1"}}`)
		return &r
	}
	recs := append([]*kgo.Record(nil), mapped...)
	const distinct, perType = MaxUnmappedTypes + 8, 3
	for i := range distinct {
		for j := range perType {
			recs = append(recs, raw(fmt.Sprintf("audit_log-u%d-%d", i, j), fmt.Sprintf("future%d.widget.exploded", i)))
		}
	}
	// A new action in a known family is mapped by its family.
	recs = append(recs, raw("audit_log-rotated", "api_key.rotated"))
	require.NoError(t, c.Client(t).ProduceSync(context.Background(), recs...).FirstErr())

	reg := prometheus.NewRegistry()
	cfg := c.Config()
	base, err := cfg.Options(nil, nil, "test")
	require.NoError(t, err)
	p, err := New(Config{InputTopic: "openai-audit-raw", OutputTopic: "openai-audit-enriched", DLQTopic: "openai-audit-dlq",
		Group: "g", TransactionalID: "t1", MaxPollRecords: 100, EndTimeout: 5 * time.Second, RetryBackoff: 10 * time.Millisecond}, base, newProcessor(t), nil, reg)
	require.NoError(t, err)
	runUntil(t, p, func() bool { return testutil.ToFloat64(p.m.out) >= float64(len(recs)) })

	series := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "auditpipe_enricher_unmapped_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			series[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	require.Len(t, series, MaxUnmappedTypes+1, "the bound plus other: %v", series)
	total := 0.0
	for typ, v := range series {
		total += v
		if typ != UnmappedOther {
			assert.Regexp(t, `^future\d+\.widget\.exploded$`, typ)
			assert.Equal(t, float64(perType), v, typ)
		}
	}
	assert.Equal(t, float64(distinct*perType), total, "every unmapped record counted once")
	assert.Equal(t, float64((distinct-MaxUnmappedTypes)*perType), series[UnmappedOther])
}
