package pipeline_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/kafka/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// benchRows is the topic size each benchmark iteration loads.
const benchRows = 100_000

// BenchmarkLoad measures end-to-end loading of benchRows 46-column records
// (4 partitions, already on the topic) into the embedded ClickHouse over
// HTTP: consume, decode, batch, insert, commit. Each iteration loads into
// a freshly created table with a new consumer group.
func BenchmarkLoad(b *testing.B) {
	cluster := kafkatest.NewCluster(b, kfake.SeedTopics(4, topic, dlq))
	reg := kafkatest.NewRegistry(b)
	serde, _, err := schema.NewSerde(b.Context(), reg.Client(b), schema.Subject, true)
	require.NoError(b, err)
	chURL, db := chservertest.NewDatabase(b)

	prod := cluster.Client(b, kgo.ProducerBatchMaxBytes(4<<20))
	recs := make([]*kgo.Record, 0, 10_000)
	for i := range benchRows {
		l := row(i)
		l.SrcISP, l.SrcCity, l.ActorUserEmail = "Example ISP", "Zürich", "user"+strconv.Itoa(i)+"@example.com"
		v, err := serde.Encode(l)
		require.NoError(b, err)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(l.ID), Value: v})
		if len(recs) == cap(recs) {
			require.NoError(b, prod.ProduceSync(b.Context(), recs...).FirstErr())
			recs = recs[:0]
		}
	}

	cfg := chwriter.DefaultConfig()
	cfg.Protocol, cfg.Addr, cfg.Database = chwriter.ProtocolHTTP, []string{chURL[len("http://"):]}, db
	w, err := chwriter.New(cfg, nil)
	require.NoError(b, err)
	defer w.Close()
	migs, err := schema.Migrations(cfg.MigrationOptions())
	require.NoError(b, err)

	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		require.NoError(b, w.Exec(b.Context(), "DROP TABLE IF EXISTS `"+db+"`.`"+schema.Table+"` SYNC"))
		for _, s := range migs[0].Statements {
			require.NoError(b, w.Exec(b.Context(), s))
		}
		pc := pipeline.DefaultConfig()
		pc.Group = "bench-" + strconv.Itoa(i)
		pc.Batch = batch.DefaultPolicy()
		copts, err := cluster.Config().Options(nil, nil, "bench")
		require.NoError(b, err)
		copts = append(copts, kgo.FetchMaxWait(50*time.Millisecond), kgo.FetchMaxPartitionBytes(16<<20), kgo.FetchMaxBytes(64<<20))
		dec, err := schema.NewDecoder(reg.Client(b), 0)
		require.NoError(b, err)
		p, err := pipeline.New(pc, pipeline.Options{ClientOpts: copts, Decoder: dec, Inserter: w})
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- p.Run(ctx) }()
		for {
			var n uint64
			require.NoError(b, w.Conn().QueryRow(b.Context(), "SELECT count() FROM `"+db+"`.`"+schema.Table+"`").Scan(&n))
			if n >= benchRows {
				break
			}
			time.Sleep(5 * time.Millisecond) //nolint:forbidigo // polling the table
		}
		total += time.Since(start)
		b.StopTimer()
		cancel()
		require.NoError(b, <-done)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/total.Seconds(), "rows/s")
}
