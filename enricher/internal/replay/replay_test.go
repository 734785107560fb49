package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/enricher/internal/replay"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestResetToTime(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(1, "raw"))
	cl := c.Client(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		r := &kgo.Record{Topic: "raw", Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Hour)}
		require.NoError(t, cl.ProduceSync(context.Background(), r).FirstErr())
	}
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	require.NoError(t, adm.CommitAllOffsets(ctx, "g", kadm.Offsets{"raw": {0: {Topic: "raw", Partition: 0, At: 10}}}))

	// Dry run: computes, commits nothing.
	moves, err := replay.Reset(ctx, adm, "g", "raw", base.Add(4*time.Hour), true)
	require.NoError(t, err)
	assert.Equal(t, []replay.Move{{Partition: 0, From: 10, To: 4}}, moves)
	got, err := adm.FetchOffsets(ctx, "g")
	require.NoError(t, err)
	o, _ := got.Lookup("raw", 0)
	assert.Equal(t, int64(10), o.At)

	// For real, with a time between records.
	moves, err = replay.Reset(ctx, adm, "g", "raw", base.Add(6*time.Hour+time.Minute), false)
	require.NoError(t, err)
	assert.Equal(t, []replay.Move{{Partition: 0, From: 10, To: 7}}, moves)
	got, err = adm.FetchOffsets(ctx, "g")
	require.NoError(t, err)
	o, _ = got.Lookup("raw", 0)
	assert.Equal(t, int64(7), o.At)

	// After the last record: the end.
	moves, err = replay.Reset(ctx, adm, "g", "raw", base.Add(48*time.Hour), false)
	require.NoError(t, err)
	assert.Equal(t, int64(10), moves[0].To)

	// A group that never committed starts from the time too.
	moves, err = replay.Reset(ctx, adm, "fresh", "raw", base, false)
	require.NoError(t, err)
	assert.Equal(t, []replay.Move{{Partition: 0, From: -1, To: 0}}, moves)
}

func TestResetUnknownTopic(t *testing.T) {
	c := kafkatest.NewCluster(t)
	_, err := replay.Reset(context.Background(), kadm.NewClient(c.Client(t)), "g", "nope", time.Now(), true)
	require.Error(t, err)
}
