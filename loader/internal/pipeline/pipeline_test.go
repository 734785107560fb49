package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

func TestLoadsEveryRecordOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.produce(0, 3000, nil)
	l := e.start(loaderOpts{})
	e.waitRows(3000, 30*time.Second)
	e.produce(3000, 3100, nil)
	e.waitRows(3100, 30*time.Second)
	require.NoError(t, l.stop())
	e.requireExactlyOnce(3100)
	// sum of srcASNumber = 0+1+...+3099
	assert.Equal(t, uint64(3099*3100/2), e.count("SELECT sum(srcASNumber) FROM "+schema.Table))
	committed, end := e.committed()
	assert.Equal(t, end, committed, "every offset committed")
}

func TestShutdownFlushesThenCommits(t *testing.T) {
	e := newEnv(t, nil)
	// A long max age: only the shutdown flushes.
	l := e.start(loaderOpts{policy: newPolicy(100_000, time.Hour)})
	e.produce(0, 700, nil)
	require.Eventually(t, func() bool {
		n, _ := e.committed()
		return n == 0 && e.rows() == 0
	}, time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) //nolint:forbidigo // let the loader buffer the records; nothing to observe
	require.NoError(t, l.stop())
	e.requireExactlyOnce(700)
	committed, end := e.committed()
	assert.Equal(t, end, committed)
}

func TestPoisonRecordsGoToDLQ(t *testing.T) {
	e := newEnv(t, func(stmt string) string {
		return strings.Replace(stmt, "INDEX idx_eventName", "CONSTRAINT no_poison CHECK eventName != 'poison',\n    INDEX idx_eventName", 1)
	})
	e.produce(0, 300, func(i int, l *schema.AuditLog) {
		if i == 17 || i == 201 {
			l.EventName = "poison"
		}
	})
	e.produceRaw("garbage", []byte("not avro at all"))
	l := e.start(loaderOpts{})
	e.waitRows(298, 30*time.Second)
	dead := e.cluster.ConsumeAll(t, dlq, 3, 10*time.Second)
	require.NoError(t, l.stop())
	e.requireExactlyOnce(298)
	require.Len(t, dead, 3)
	reasons := map[string]int{}
	for _, r := range dead {
		h := headers(r)
		assert.Equal(t, "loader", h["dlq_stage"])
		assert.Equal(t, topic, h["dlq_topic"])
		assert.NotEmpty(t, h["dlq_error"])
		assert.NotEmpty(t, h["dlq_offset"])
		assert.NotEmpty(t, h["dlq_time"])
		reasons[h["dlq_reason"]]++
		if h["dlq_reason"] == pipeline.ReasonAvroDecode {
			assert.Equal(t, []byte("not avro at all"), r.Value, "original bytes")
			assert.Equal(t, "garbage", string(r.Key))
		} else {
			assert.Equal(t, "ws", h["workspace_id"], "original headers kept")
			var got schema.AuditLog
			require.NoError(t, e.serde.Decode(r.Value, &got))
			assert.Equal(t, "poison", got.EventName)
		}
	}
	assert.Equal(t, map[string]int{pipeline.ReasonAvroDecode: 1, pipeline.ReasonClickHouseRejected: 2}, reasons)
	committed, end := e.committed()
	assert.Equal(t, end, committed)
}

func headers(r *kgo.Record) map[string]string {
	out := map[string]string{}
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func TestClickHouseOutage(t *testing.T) {
	e := newEnv(t, nil)
	px := newProxy(t, strings.TrimPrefix(e.chURL, "http://"))
	l := e.start(loaderOpts{ins: e.writer(px.addr)})
	e.produce(0, 200, nil)
	e.waitRows(200, 30*time.Second)
	require.Eventually(t, func() bool { c, end := e.committed(); return c == end }, 10*time.Second, 20*time.Millisecond)
	before, _ := e.committed()

	px.down()
	e.produce(200, 500, nil)
	require.Eventually(t, func() bool { return l.p.Ready(t.Context()) != nil }, 10*time.Second, 10*time.Millisecond, "not ready during the outage")
	after, _ := e.committed()
	assert.Equal(t, before, after, "nothing committed while ClickHouse is down")
	assert.Equal(t, uint64(200), e.rows())

	px.up(t)
	e.waitRows(500, 30*time.Second)
	require.Eventually(t, func() bool { return l.p.Ready(t.Context()) == nil }, 10*time.Second, 10*time.Millisecond, "ready again")
	require.NoError(t, l.stop())
	e.requireExactlyOnce(500)
	committed, end := e.committed()
	assert.Equal(t, end, committed)
}

func TestTwoLoadersThroughRebalance(t *testing.T) {
	e := newEnv(t, nil)
	a := e.start(loaderOpts{})
	e.produce(0, 1000, nil)
	e.waitRows(1000, 30*time.Second)
	b := e.start(loaderOpts{})
	for i := 1; i <= 4; i++ {
		e.produce(i*1000, i*1000+1000, nil)
		time.Sleep(50 * time.Millisecond) //nolint:forbidigo // spread the production over the rebalances
	}
	require.NoError(t, a.stop()) // a leaves: b takes everything
	e.produce(5000, 6000, nil)
	e.waitRows(6000, 30*time.Second)
	require.NoError(t, b.stop())
	e.requireExactlyOnce(6000)
	committed, end := e.committed()
	assert.Equal(t, end, committed)
}

// crashingInserter makes the process "die" at its first insert: with
// stored set, after ClickHouse stored and acknowledged the rows and before
// any commit (the case a duplicate would come from); without, before the
// rows reach ClickHouse (the case a loss would come from). It then freezes
// until released and fails forever.
type crashingInserter struct {
	next     pipeline.Inserter
	stored   bool
	inserted chan struct{}
	release  chan struct{}
	crashed  atomic.Bool
	once     sync.Once
}

func (c *crashingInserter) Insert(ctx context.Context, token string, rows []*schema.AuditLog) error {
	if c.crashed.Load() {
		return errors.New("crashed")
	}
	if c.stored {
		if err := c.next.Insert(ctx, token, rows); err != nil {
			return err
		}
	}
	c.crashed.Store(true)
	c.once.Do(func() { close(c.inserted) })
	<-c.release
	return errors.New("crashed")
}

func TestCrashDuringInsertNoLossNoDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored bool
	}{
		{"after ClickHouse stored the batch", true},
		{"before the batch reached ClickHouse", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			// No merges: a duplicate would stay visible to count().
			require.NoError(t, e.w.Exec(t.Context(), "SYSTEM STOP MERGES "+e.db+"."+schema.Table))
			e.produce(0, 2000, nil)
			crash := &crashingInserter{next: e.w, stored: tc.stored, inserted: make(chan struct{}), release: make(chan struct{})}
			a := e.start(loaderOpts{ins: crash, drain: 500 * time.Millisecond, policy: newPolicy(100_000, 200*time.Millisecond)})
			select {
			case <-crash.inserted:
			case <-time.After(30 * time.Second):
				t.Fatal("no insert")
			}
			if tc.stored {
				require.Positive(t, e.rows())
			} else {
				require.Zero(t, e.rows())
			}
			committed, _ := e.committed()
			require.Less(t, committed, int64(2000), "the crashed loader committed nothing after its insert")

			// More records arrive before the restart, so a fresh batch would
			// span a different range than the crashed insert did.
			e.produce(2000, 2100, nil)
			// The restarted loader joins; the frozen one is evicted after its
			// rebalance timeout, and the new one repeats the announced ranges
			// with the same tokens, which ClickHouse deduplicates.
			b := e.start(loaderOpts{})
			e.waitRows(2100, 60*time.Second)
			close(crash.release)
			_ = a.stop() // fails: it lost its partitions
			require.NoError(t, b.stop())
			e.requireExactlyOnce(2100)
			committed, end := e.committed()
			assert.Equal(t, end, committed)
		})
	}
}

// gatedInserter blocks its first Insert until released.
type gatedInserter struct {
	next    pipeline.Inserter
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedInserter) Insert(ctx context.Context, token string, rows []*schema.AuditLog) error {
	first := false
	g.once.Do(func() { first = true; close(g.entered) })
	if first {
		<-g.release
	}
	return g.next.Insert(ctx, token, rows)
}

func TestDecodesNextBatchWhileInserting(t *testing.T) {
	e := newEnv(t, nil)
	e.produce(0, 2000, nil)
	gate := &gatedInserter{next: e.w, entered: make(chan struct{}), release: make(chan struct{})}
	var decoded atomic.Int64
	l := e.start(loaderOpts{ins: gate, policy: newPolicy(500, 10*time.Second), decoded: &decoded})
	select {
	case <-gate.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no insert")
	}
	// While the first batch (500 rows) is being inserted, the next 500
	// are consumed and decoded, and no more: twice the batch policy.
	require.Eventually(t, func() bool { return decoded.Load() == 1000 }, 10*time.Second, 5*time.Millisecond)
	require.Never(t, func() bool { return decoded.Load() > 1000 }, 300*time.Millisecond, 10*time.Millisecond)
	close(gate.release)
	e.waitRows(2000, 30*time.Second)
	require.NoError(t, l.stop())
	e.requireExactlyOnce(2000)
	committed, end := e.committed()
	assert.Equal(t, end, committed)
}

func TestRecordDelayCoversEveryFlushedRecord(t *testing.T) {
	e := newEnv(t, nil)
	reg := prometheus.NewRegistry()
	l := e.start(loaderOpts{reg: reg})
	e.produce(0, 200, nil)
	e.waitRows(200, 30*time.Second)
	require.NoError(t, l.stop())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	found := map[string]bool{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "auditpipe_loader_record_delay_seconds", "auditpipe_loader_event_delay_seconds":
			found[mf.GetName()] = true
			h := mf.GetMetric()[0].GetHistogram()
			assert.Equal(t, uint64(200), h.GetSampleCount(), "%s: one sample per flushed record", mf.GetName())
			assert.Positive(t, h.GetSampleSum(), mf.GetName())
		}
	}
	assert.Len(t, found, 2, "record and event delay histograms registered")
}
