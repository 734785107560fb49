package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// MetadataMinAge is the metadata refresh floor of every client and Config
// made here; see the package documentation.
const MetadataMinAge = 50 * time.Millisecond

// Cluster is an in-process kfake cluster that lives until the test ends.
type Cluster struct {
	fake  *kfake.Cluster
	addrs []string
}

// NewCluster starts a kfake cluster with one broker (opts may override it,
// e.g. kfake.NumBrokers(3), kfake.SeedTopics, kfake.EnableSASL) and closes
// it when the test ends. It fails the test if the cluster cannot start.
func NewCluster(t testing.TB, opts ...kfake.Opt) *Cluster {
	t.Helper()
	fake, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("starting kfake cluster: %v", err)
	}
	t.Cleanup(fake.Close)
	return &Cluster{fake: fake, addrs: fake.ListenAddrs()}
}

// Addrs returns the brokers' host:port addresses.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Kfake returns the underlying cluster for fault injection (Fault,
// ControlKey), topic moves and the like.
func (c *Cluster) Kfake() *kfake.Cluster { return c.fake }

// Config returns kafka.DefaultConfig pointed at the cluster, with short
// timeouts and metadata ages and no linger so tests run fast. TLS and SASL
// are left off; set them when the cluster was started with them.
func (c *Cluster) Config() kafka.Config {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = c.Addrs()
	cfg.ClientID = "auditpipe-test"
	cfg.DialTimeout = 2 * time.Second
	cfg.MetadataMinAge = MetadataMinAge
	cfg.MetadataMaxAge = time.Second
	cfg.Linger = 0
	return cfg
}

// Client returns a plain kgo client for the cluster (50 ms MetadataMinAge,
// 1 s MetadataMaxAge), configured further by extra, and closes it when the
// test ends (before the cluster). It fails the test on a bad option.
func (c *Cluster) Client(t testing.TB, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := newClient(t, c.addrs, extra...)
	t.Cleanup(cl.Close)
	return cl
}

// newClient returns a client the caller must close.
func newClient(t testing.TB, addrs []string, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.MetadataMinAge(MetadataMinAge),
		kgo.MetadataMaxAge(time.Second),
		kgo.ClientID("auditpipe-test"),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("creating kafka client: %v", err)
	}
	return cl
}

// ConsumeAll is ConsumeAll on the cluster's addresses.
func (c *Cluster) ConsumeAll(t testing.TB, topic string, n int, timeout time.Duration, extra ...kgo.Opt) []*kgo.Record {
	t.Helper()
	return ConsumeAll(t, c.addrs, topic, n, timeout, extra...)
}

// ConsumeAll reads topic from its start with a fresh client (no consumer
// group) as a read_committed reader, so records of open or aborted
// transactions are never returned. It returns once it has n records (n > 0)
// or timeout has passed, with what it read so far; callers assert on the
// count. extra configures the client (e.g. TLS or SASL options).
// Non-retriable fetch errors are logged to t.
func ConsumeAll(t testing.TB, brokers []string, topic string, n int, timeout time.Duration, extra ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, brokers, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, extra...)...)
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for n <= 0 || len(out) < n {
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) ||
				errors.Is(fe.Err, kgo.ErrClientClosed) || kerr.IsRetriable(fe.Err) {
				continue
			}
			t.Logf("consuming %s: partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if ctx.Err() != nil {
			break
		}
	}
	return out
}
