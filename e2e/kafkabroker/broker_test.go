package kafkabroker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDefaultProperties(t *testing.T) {
	p := DefaultProperties(9092, 9093, "/d")
	assert.Equal(t, "broker,controller", p["process.roles"])
	assert.Equal(t, "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", p["listeners"])
	assert.Equal(t, "PLAINTEXT://127.0.0.1:9092", p["advertised.listeners"])
	assert.Equal(t, "1@127.0.0.1:9093", p["controller.quorum.voters"])
	assert.Equal(t, "false", p["auto.create.topics.enable"])
	for _, k := range []string{"offsets.topic.replication.factor", "transaction.state.log.replication.factor", "transaction.state.log.min.isr"} {
		assert.Equal(t, "1", p[k], k)
	}
}

func TestNewClusterID(t *testing.T) {
	a, err := newClusterID()
	require.NoError(t, err)
	b, err := newClusterID()
	require.NoError(t, err)
	assert.Len(t, a, 22)
	assert.NotEqual(t, a, b)
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(3)
	require.NoError(t, err)
	require.Len(t, ports, 3)
	assert.NotEqual(t, ports[0], ports[1])
	assert.NotEqual(t, ports[1], ports[2])
	assert.NotEqual(t, ports[0], ports[2])
}

func TestStartReportsLogTail(t *testing.T) {
	java := RequireJava(t)
	libs := RequireLibs(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	_, err = Start(t.Context(), Config{Dir: t.TempDir(), Port: port, LibDir: libs, Java: java})
	require.Error(t, err, "the listener port is taken")
	assert.Contains(t, err.Error(), "exited before it was ready")
	assert.Contains(t, err.Error(), "--- tail of")
	assert.Contains(t, err.Error(), strconv.Itoa(port))
}

// TestTransactionsAcrossRestarts produces transactionally while a read_committed
// consumer runs, stops and restarts the broker (gracefully, then with SIGKILL)
// between batches, and checks that exactly the committed records arrive, once.
func TestTransactionsAcrossRestarts(t *testing.T) {
	b := StartTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const topic = "events"

	adm, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer adm.Close()
	created, err := kadm.NewClient(adm).CreateTopics(ctx, 3, 1, nil, topic)
	require.NoError(t, err)
	require.NoError(t, created.Error())

	prod, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr()),
		kgo.TransactionalID("kafkabroker-test"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(100),
	)
	require.NoError(t, err)
	defer prod.Close()

	c := startConsumer(t, b.Addr(), topic)

	const perPhase, perTxn = 400, 50
	next, phases := 0, 0
	producePhase := func(phase string) {
		t.Helper()
		for range perPhase / perTxn {
			require.NoError(t, produceTxn(ctx, prod, next, next+perTxn, kgo.TryCommit), phase)
			next += perTxn
		}
		// An aborted transaction in every phase: read_committed must hide
		// it. Its values are negative and tell the phase: phase n (from 1)
		// aborts -n*1000 … -n*1000+perTxn-1.
		phases++
		require.NoError(t, produceTxn(ctx, prod, -phases*1000, -phases*1000+perTxn, kgo.TryAbort), phase)
	}

	producePhase("before any restart")
	c.waitFor(t, next)

	start := time.Now()
	require.NoError(t, b.Stop(ctx))
	stopped := time.Since(start)
	require.False(t, b.Running())
	start = time.Now()
	require.NoError(t, b.Restart(ctx))
	t.Logf("graceful stop %s, restart %s", stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	producePhase("after a graceful restart")
	c.waitFor(t, next)
	require.Equal(t, 0, c.aborted(), "read_committed hides aborted records (before any SIGKILL)")

	b.Kill()
	start = time.Now()
	require.NoError(t, b.Restart(ctx))
	t.Logf("restart after SIGKILL %s", time.Since(start).Round(time.Millisecond))
	producePhase("after kill -9 and restart")

	got := c.waitFor(t, next)
	committed := 0
	for k := range got {
		if !strings.HasPrefix(k, "-") {
			committed++
		}
	}
	require.Equal(t, next, committed, "exactly the committed records")
	for i := range next {
		require.Equal(t, 1, got[strconv.Itoa(i)], "record %d delivered exactly once", i)
	}
	// Seen in about one run in eight: the transaction aborted just before
	// the SIGKILL becomes visible to read_committed readers, because the
	// restarted single node skips its abort markers while its partitions
	// have no leader. The committed records stay exactly once;
	// docs/apache-kafka.md has the analysis.
	if n := c.aborted(); n > 0 {
		byPhase := map[int]int{}
		for k, cnt := range got {
			if v, err := strconv.Atoi(k); err == nil && v < 0 {
				byPhase[(-v+999)/1000] += cnt
			}
		}
		t.Logf("KNOWN ANOMALY: %d records of aborted transactions were visible to read_committed after the SIGKILL restart; by phase (1: before any restart, 2: after the graceful restart, 3: after the SIGKILL restart): %v", n, byPhase)
		// Does the broker serve them as committed to everyone now, or did
		// only the consumer that was reading across the kill see them?
		fresh := startConsumer(t, b.Addr(), topic)
		fresh.waitFor(t, next)
		t.Logf("KNOWN ANOMALY: a fresh read_committed consumer reading from the start sees %d aborted records", fresh.aborted())
	}
}

// produceTxn produces values from..to-1 in one transaction ended with commit.
func produceTxn(ctx context.Context, cl *kgo.Client, from, to int, commit kgo.TransactionEndTry) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		v := strconv.Itoa(i)
		recs = append(recs, &kgo.Record{Key: []byte(v), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("producing: %w", err)
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("ending transaction: %w", err)
	}
	return nil
}

// consumer reads a topic read_committed, without a group, so its positions
// survive broker restarts and a duplicate can only come from the broker.
type consumer struct {
	cl   *kgo.Client
	mu   sync.Mutex
	seen map[string]int
	neg  int
}

func startConsumer(t *testing.T, addr, topic string) *consumer {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	require.NoError(t, err)
	c := &consumer{cl: cl, seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			c.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				if strings.HasPrefix(string(r.Value), "-") {
					c.neg++
				}
				c.seen[string(r.Value)]++
			})
			c.mu.Unlock()
			// Fetch errors while the broker is down are expected; the client retries.
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return c
}

// waitFor blocks until n distinct committed records arrived and returns a copy of the counts.
func (c *consumer) waitFor(t *testing.T, n int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c.mu.Lock()
		have := len(c.seen) - c.neg
		c.mu.Unlock()
		if have >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d records after a minute", have, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	got := make(map[string]int, len(c.seen))
	for k, v := range c.seen {
		got[k] = v
	}
	return got
}

func (c *consumer) aborted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.neg
}

// BenchmarkStartStop measures a cold start (format, JVM start, first metadata
// answer) followed by a graceful stop, with DefaultJVMArgs and with the JVM's
// own defaults (heap capped only).
func BenchmarkStartStop(b *testing.B) {
	java := RequireJava(b)
	libs := RequireLibs(b)
	for _, bc := range []struct {
		name string
		jvm  []string
	}{
		{"DefaultJVMArgs", nil},
		{"HeapOnly", []string{"-Xmx512m"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var ready, stop time.Duration
			for b.Loop() {
				start := time.Now()
				br, err := Start(b.Context(), Config{Dir: b.TempDir(), LibDir: libs, Java: java, JVMArgs: bc.jvm})
				require.NoError(b, err)
				ready += time.Since(start)
				start = time.Now()
				require.NoError(b, br.Stop(b.Context()))
				stop += time.Since(start)
			}
			b.ReportMetric(float64(ready.Milliseconds())/float64(b.N), "ms-to-ready")
			b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "ms-to-stop")
		})
	}
}
