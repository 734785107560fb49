package kafka_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// syncBuffer is a log sink safe for the watch's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time            { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration)   { c.ns.Add(int64(d)) }
func (c *fakeClock) opt() kafka.ProgressOption { return kafka.WithProgressClock(c.now) }

// produceN writes n records to partition 0 of topic in one transaction, so
// the partition ends with a commit marker as the pipeline's topics do.
func produceN(t *testing.T, cl *kafkatest.Cluster, topic string, n int) {
	t.Helper()
	p := cl.Client(t, kgo.TransactionalID("progress-test-producer"), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	require.NoError(t, p.BeginTransaction())
	for i := 0; i < n; i++ {
		p.Produce(ctx, &kgo.Record{Value: []byte("v"), Partition: 0}, nil)
	}
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, p.EndTransaction(ctx, kgo.TryCommit))
}

// commit commits offset at for the group on partition 0 of topic.
func commit(t *testing.T, adm *kadm.Client, group, topic string, at int64) {
	t.Helper()
	var o kadm.Offsets
	o.AddOffset(topic, 0, at, -1)
	resp, err := adm.CommitOffsets(context.Background(), group, o)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

func TestProgressWatchReportsAStallAndItsEnd(t *testing.T) {
	const topic, group = "progress", "progress-group"
	cl := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	adm := kadm.NewClient(cl.Client(t))
	clock := newFakeClock()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	remedies := atomic.Int32{}
	w, err := kafka.NewProgressWatch(kafka.ProgressConfig{Group: group, Topic: topic, StallTimeout: time.Minute},
		adm, func() string { return "me" }, func() { remedies.Add(1) }, slog.New(slog.NewJSONHandler(logs, nil)), reg, clock.opt())
	require.NoError(t, err)
	ctx := context.Background()

	// Nothing to consume: never stalled, however long it stays so.
	_, err = w.Check(ctx)
	require.NoError(t, err)
	clock.advance(10 * time.Minute)
	stalls, err := w.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, stalls)

	// Ten records behind a group that committed up to the first one: the
	// stall counts once the committed offset stood still for the timeout.
	produceN(t, cl, topic, 10)
	commit(t, adm, group, topic, 1)
	stalls, err = w.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, stalls, "not stalled before the timeout")
	require.NoError(t, w.Ready(ctx))
	clock.advance(61 * time.Second)
	stalls, err = w.Check(ctx)
	require.NoError(t, err)
	require.Len(t, stalls, 1)
	assert.Equal(t, int32(0), stalls[0].Partition)
	assert.Equal(t, int64(1), stalls[0].Committed)
	assert.Equal(t, int64(11), stalls[0].End, "ten records and the commit marker")
	assert.Equal(t, "", stalls[0].Owner, "the group has no member")

	// All three signals: the warning, the metrics, /readyz.
	assert.Contains(t, logs.String(), `"msg":"consumer group makes no progress on a partition"`)
	assert.Contains(t, logs.String(), `"partition":0,"committed":1,"end":11`)
	assert.InDelta(t, 1, value(t, reg, "auditpipe_consumer_stalled_partitions"), 0)
	assert.InDelta(t, 1, value(t, reg, "auditpipe_consumer_stalls_total"), 0)
	assert.InDelta(t, 10, value(t, reg, "auditpipe_consumer_lag_records"), 0)
	require.ErrorContains(t, w.Ready(ctx), "no progress on progress partition(s) 0")
	assert.Equal(t, int32(1), remedies.Load(), "a partition no member owns asks for a rebalance")

	// Still stalled: counted once, the remedy not repeated within the timeout.
	clock.advance(10 * time.Second)
	_, err = w.Check(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 1, value(t, reg, "auditpipe_consumer_stalls_total"), 0)
	assert.Equal(t, int32(1), remedies.Load())

	// Caught up (one short of the end: the marker): progress again.
	commit(t, adm, group, topic, 10)
	stalls, err = w.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, stalls)
	require.NoError(t, w.Ready(ctx))
	assert.InDelta(t, 0, value(t, reg, "auditpipe_consumer_stalled_partitions"), 0)
	assert.Contains(t, logs.String(), "partition makes progress again")
	clock.advance(time.Hour)
	stalls, err = w.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, stalls, "a partition one short of its end (the marker) is caught up")
}

func TestProgressWatchOwnStallNeedsNoRebalance(t *testing.T) {
	const topic, group = "owned", "owned-group"
	cl := kafkatest.NewCluster(t, kfake.SeedTopics(1, topic))
	produceN(t, cl, topic, 5)
	// A member that owns the partition and never commits.
	member := cl.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	require.Eventually(t, func() bool {
		fs := member.PollRecords(context.Background(), 10)
		return fs.NumRecords() > 0
	}, 10*time.Second, 10*time.Millisecond)
	self := func() string { id, _ := member.GroupMetadata(); return id }

	clock := newFakeClock()
	remedies := atomic.Int32{}
	w, err := kafka.NewProgressWatch(kafka.ProgressConfig{Group: group, Topic: topic, StallTimeout: time.Minute},
		kadm.NewClient(cl.Client(t)), self, func() { remedies.Add(1) }, nil, nil, clock.opt())
	require.NoError(t, err)
	_, err = w.Check(context.Background())
	require.NoError(t, err)
	clock.advance(2 * time.Minute)
	var stalls []kafka.PartitionStall
	require.Eventually(t, func() bool { // the member's assignment shows once the group is stable
		stalls, err = w.Check(context.Background())
		return err == nil && len(stalls) == 1 && stalls[0].Owner != ""
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, self(), stalls[0].Owner)
	assert.Equal(t, int64(-1), stalls[0].Committed, "never committed")
	assert.Zero(t, remedies.Load(), "a stall of this member's own partition is not fixed by a rebalance")
	require.Error(t, w.Ready(context.Background()))
}

func TestProgressWatchRunStopsWithItsContext(t *testing.T) {
	cl := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"))
	w, err := kafka.NewProgressWatch(kafka.ProgressConfig{Group: "g", Topic: "t", StallTimeout: 40 * time.Millisecond},
		kadm.NewClient(cl.Client(t)), nil, nil, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.NoError(t, w.Run(ctx))
	stop := w.Start(context.Background())
	time.Sleep(100 * time.Millisecond)
	stop() // returns once the goroutine ended (goleak checks the package)
}

func TestProgressWatchValidates(t *testing.T) {
	_, err := kafka.NewProgressWatch(kafka.ProgressConfig{Group: "g"}, nil, nil, nil, nil, nil)
	require.ErrorContains(t, err, "group, topic, a positive stall timeout and an admin client are required")
}

// value returns the value of the single series named name in reg.
func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		require.Len(t, mf.GetMetric(), 1, name)
		m := mf.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}
