package kafkatest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestClusterProduceConsume(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(2, "in"))
	require.Len(t, c.Addrs(), 1)

	cl := c.Client(t)
	for i := range 10 {
		require.NoError(t, cl.ProduceSync(ctx(t), &kgo.Record{Topic: "in", Value: []byte{byte(i)}}).FirstErr())
	}
	recs := c.ConsumeAll(t, "in", 10, 5*time.Second)
	assert.Len(t, recs, 10)

	// With n <= 0 it reads until the timeout.
	assert.Len(t, c.ConsumeAll(t, "in", 0, 300*time.Millisecond), 10)
}

func TestConfigWorksWithKafkaNewClient(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"))
	cfg := c.Config()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, kafkatest.MetadataMinAge, cfg.MetadataMinAge)

	cl, err := kafka.NewClient(cfg, nil, nil, "test")
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr())
	assert.Len(t, kafkatest.ConsumeAll(t, c.Addrs(), "t", 1, 5*time.Second), 1)
}

func TestConsumeAllReadsCommittedOnly(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"))
	txn := c.Client(t, kgo.TransactionalID("txn"))

	for _, commit := range []bool{false, true} {
		require.NoError(t, txn.BeginTransaction())
		for range 3 {
			require.NoError(t, txn.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr())
		}
		require.NoError(t, txn.EndTransaction(ctx(t), kgo.TransactionEndTry(commit)))
	}
	assert.Len(t, c.ConsumeAll(t, "t", 0, 500*time.Millisecond), 3, "the aborted transaction is invisible")
}

func TestFaultsRetryFastWithShortMetadataAge(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"))
	cl := c.Client(t)
	h := c.Kfake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.NotLeaderForPartition, Count: 3})
	defer h.Remove()

	// With kgo's default 5 s MetadataMinAge this would take about 15 s; the
	// 10 s context would expire.
	require.NoError(t, cl.ProduceSync(ctx(t), &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr())
	assert.Equal(t, 3, h.Hits())
}

func TestFakeSchemaRegistry(t *testing.T) {
	r := kafkatest.NewFakeSchemaRegistry(t)
	assert.Contains(t, r.URL(), "http://127.0.0.1:")

	cl := r.Client(t)
	sch := sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"E","fields":[{"name":"id","type":"string","default":""}]}`}
	ss, err := cl.CreateSchema(ctx(t), "openai-audit-enriched-value", sch)
	require.NoError(t, err)
	assert.Equal(t, 1, ss.Version)

	// The fake is reachable for seeding and inspection.
	assert.True(t, r.Fake().SubjectExists("openai-audit-enriched-value"))
	r.Fake().SeedSchema("other-value", 1, 42, sch)
	got, err := cl.SchemaByID(ctx(t), 42)
	require.NoError(t, err)
	assert.Equal(t, sr.TypeAvro, got.Type)
}
