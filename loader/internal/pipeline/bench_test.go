package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/loader/internal/app"
	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// benchRows is the topic size each benchmark iteration loads: three
// batches of the default policy, so that the steady state (decoding the
// next batch while the last one is inserted) is measured, not one batch's
// latency. BENCH_ROWS overrides it.
var benchRows = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 300_000
}()

// benchFixture is a topic holding benchRows 46-column records on 4
// partitions, a registry holding their schema, and a database in the
// embedded ClickHouse.
type benchFixture struct {
	cluster *kafkatest.Cluster
	reg     *kafkatest.FakeSchemaRegistry
	db      string
	w       *chwriter.Writer
	table   string // database-qualified openai_audit_logs
}

func newBenchFixture(b *testing.B, optimizeOnInsert bool) *benchFixture {
	return newBenchFixtureOf(b, optimizeOnInsert, func(i int) schema.AuditLog {
		l := row(i)
		l.SrcISP, l.SrcCity, l.ActorUserEmail = "Example ISP", "Zürich", "user"+strconv.Itoa(i)+"@example.com"
		return l
	})
}

// newBenchFixtureOf is newBenchFixture with the rows of mk.
func newBenchFixtureOf(b *testing.B, optimizeOnInsert bool, mk func(i int) schema.AuditLog) *benchFixture {
	b.Helper()
	f := &benchFixture{}
	f.cluster = kafkatest.NewCluster(b, kfake.SeedTopics(4, topic, dlq))
	f.reg = kafkatest.NewFakeSchemaRegistry(b)
	serde, _, err := schema.NewSerde(b.Context(), f.reg.Client(b), contract.SubjectEnriched, true)
	require.NoError(b, err)
	var chURL string
	chURL, f.db = chservertest.NewDatabase(b)
	f.table = "`" + f.db + "`.`" + schema.Table + "`"

	prod := f.cluster.Client(b, kgo.ProducerBatchMaxBytes(4<<20))
	recs := make([]*kgo.Record, 0, 10_000)
	for i := range benchRows {
		l := mk(i)
		v, err := serde.Encode(l)
		require.NoError(b, err)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(l.ID), Value: v})
		if len(recs) == cap(recs) || i == benchRows-1 {
			require.NoError(b, prod.ProduceSync(b.Context(), recs...).FirstErr())
			recs = recs[:0]
		}
	}

	cfg := chwriter.DefaultConfig()
	cfg.Protocol, cfg.Addr, cfg.Database = chwriter.ProtocolHTTP, []string{strings.TrimPrefix(chURL, "http://")}, f.db
	cfg.OptimizeOnInsert = optimizeOnInsert
	if c := os.Getenv("BENCH_CH_COMPRESSION"); c != "" {
		cfg.Compression = c
	}
	f.w, err = chwriter.New(cfg, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = f.w.Close() })
	return f
}

// resetTable recreates an empty openai_audit_logs.
func (f *benchFixture) resetTable(b *testing.B) {
	b.Helper()
	require.NoError(b, f.w.Exec(b.Context(), "DROP TABLE IF EXISTS "+f.table+" SYNC"))
	migs, err := schema.Migrations(schema.MigrationOptions{Database: f.db})
	require.NoError(b, err)
	for _, s := range migs[0].Statements {
		require.NoError(b, f.w.Exec(b.Context(), s))
	}
}

// waitRows polls the table until it holds benchRows rows and returns when
// the first row appeared.
func (f *benchFixture) waitRows(b *testing.B) (first time.Time) {
	b.Helper()
	for {
		var n uint64
		require.NoError(b, f.w.Conn().QueryRow(b.Context(), "SELECT count() FROM "+f.table).Scan(&n))
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= uint64(benchRows) {
			require.Equal(b, uint64(benchRows), n, "rows loaded")
			return first
		}
		time.Sleep(5 * time.Millisecond) //nolint:forbidigo // polling the table
	}
}

// waitAssigned polls system.kafka_consumers until the Kafka table's
// consumers own all 4 partitions and returns when they did.
func (f *benchFixture) waitAssigned(b *testing.B, table string) time.Time {
	b.Helper()
	for {
		var n uint64
		require.NoError(b, f.w.Conn().QueryRow(b.Context(), "SELECT toUInt64(sum(length(assignments.partition_id))) FROM system.kafka_consumers WHERE database = ? AND table = ?", f.db, table).Scan(&n))
		if n >= 4 {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond) //nolint:forbidigo // polling the engine
	}
}

// checkValues checks that every event was loaded once and that the
// timestamps are plausible (the Kafka engine's DateTime trap would put
// them decades off).
func (f *benchFixture) checkValues(b *testing.B) {
	b.Helper()
	var events, bad uint64
	require.NoError(b, f.w.Conn().QueryRow(b.Context(), "SELECT uniqExact(eventID), countIf(eventTime < now() - INTERVAL 5 DAY OR eventTime > now() + INTERVAL 1 HOUR OR receivedAt < now() - INTERVAL 1 DAY OR receivedAt > now() + INTERVAL 1 HOUR) FROM "+f.table).Scan(&events, &bad))
	require.Equal(b, uint64(benchRows), events, "distinct events")
	require.Zero(b, bad, "rows with implausible timestamps")
}

// BenchmarkLoad measures end-to-end loading of benchRows 46-column records
// (4 partitions, already on the topic) into the embedded ClickHouse over
// HTTP: consume, decode, batch, insert, commit. Each iteration loads into
// a freshly created table with a new consumer group. The sub-benchmarks
// differ in the per-insert optimize_on_insert setting (the loader sends 0
// by default).
func BenchmarkLoad(b *testing.B) {
	for _, opt := range []bool{false, true} {
		b.Run(fmt.Sprintf("optimize_on_insert=%d", map[bool]int{false: 0, true: 1}[opt]), func(b *testing.B) {
			benchmarkLoad(b, opt)
		})
	}
}

// BenchmarkLoadBudget is BenchmarkLoad with realistic records (the
// enricher's output for a session event: ~1.5 KB of Avro, ~5.4 KB
// decoded) and the loader sized from each memory budget as the service
// sizes itself (batch rows and bytes, insert concurrency, fetch sizes):
// the sustained rows/s of each budget. BENCH_BUDGETS=64MiB,256MiB,none
// selects budgets (none: no memory.limit); BENCH_SHAPE=small loads the
// small records of BenchmarkLoad instead.
func BenchmarkLoadBudget(b *testing.B) {
	budgets := []string{"64MiB", "128MiB", "256MiB", "512MiB", "1GiB"}
	if v := os.Getenv("BENCH_BUDGETS"); v != "" {
		budgets = strings.Split(v, ",")
	}
	var f *benchFixture
	if os.Getenv("BENCH_SHAPE") == "small" {
		f = newBenchFixture(b, false)
	} else {
		f = newBenchFixtureOf(b, false, pipeline.RealisticRow)
	}
	for _, budget := range budgets {
		var limit config.ByteSize
		if budget != "none" {
			var err error
			limit, err = config.ParseByteSize(budget)
			require.NoError(b, err)
		}
		b.Run("memory="+budget, func(b *testing.B) {
			cfg := app.DefaultConfig()
			cfg.Memory.Limit = limit
			sz := cfg.Sizing()
			b.Logf("memory.limit %s: batch %d rows / %s, insert_concurrency %d, fetch %s / %s", limit, sz.Batch.MaxRows,
				config.ByteSize(sz.Batch.MaxBytes), sz.InsertConcurrency, sz.Kafka.FetchMaxBytes, sz.Kafka.FetchMaxPartitionBytes)
			runLoad(b, f, func(pc *pipeline.Config) {
				pc.Batch.MaxRows, pc.Batch.MaxBytes, pc.InsertConcurrency = sz.Batch.MaxRows, sz.Batch.MaxBytes, sz.InsertConcurrency
			}, kgo.FetchMaxBytes(int32(sz.Kafka.FetchMaxBytes)), kgo.FetchMaxPartitionBytes(int32(sz.Kafka.FetchMaxPartitionBytes)))
		})
	}
}

func benchmarkLoad(b *testing.B, optimizeOnInsert bool) {
	f := newBenchFixture(b, optimizeOnInsert)
	runLoad(b, f, func(pc *pipeline.Config) {
		if c, err := strconv.Atoi(os.Getenv("BENCH_INSERT_CONCURRENCY")); err == nil {
			pc.InsertConcurrency = c
		}
	}, kgo.FetchMaxPartitionBytes(16<<20), kgo.FetchMaxBytes(64<<20))
}

// runLoad times b.N loads of f's topic by a pipeline of the default
// configuration changed by set, with the extra client options.
func runLoad(b *testing.B, f *benchFixture, set func(*pipeline.Config), extra ...kgo.Opt) {
	b.ResetTimer()
	var total time.Duration
	var insert, inserts float64
	var toInsert time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f.resetTable(b)
		pc := pipeline.DefaultConfig()
		pc.Group = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i) // a new group: every run loads the whole topic
		pc.Batch = batch.DefaultPolicy()
		set(&pc)
		copts, err := f.cluster.Config().Options(nil, nil, "bench")
		require.NoError(b, err)
		copts = append(append(copts, kgo.FetchMaxWait(50*time.Millisecond)), extra...)
		dec, err := schema.NewDecoder(f.reg.Client(b), 0)
		require.NoError(b, err)
		reg := prometheus.NewRegistry()
		ti := &timedInserter{next: f.w}
		p, err := pipeline.New(pc, pipeline.Options{ClientOpts: copts, Decoder: dec, Inserter: ti, Registerer: reg})
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- p.Run(ctx) }()
		f.waitRows(b)
		total += time.Since(start)
		b.StopTimer()
		insert += histogramSum(b, reg, "auditpipe_loader_insert_duration_seconds")
		inserts += float64(histogram(b, reg, "auditpipe_loader_insert_duration_seconds").GetSampleCount())
		f.checkValues(b)
		toInsert += ti.first().Sub(start)
		cancel()
		require.NoError(b, <-done)
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/total.Seconds(), "rows/s")
	b.ReportMetric(insert/float64(b.N), "insert-s-sum/op")
	b.ReportMetric(float64(benchRows)*float64(b.N)/inserts, "rows/insert")
	b.ReportMetric(toInsert.Seconds()/float64(b.N), "s-to-first-insert/op")
}

// timedInserter records when the first Insert started.
type timedInserter struct {
	next  pipeline.Inserter
	mu    sync.Mutex
	start time.Time
}

func (t *timedInserter) Insert(ctx context.Context, token string, rows []*schema.AuditLog) error {
	t.mu.Lock()
	if t.start.IsZero() {
		t.start = time.Now()
	}
	t.mu.Unlock()
	return t.next.Insert(ctx, token, rows)
}

func (t *timedInserter) first() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.start
}

// histogramSum returns the sum of the named histogram in reg.
func histogramSum(b *testing.B, reg *prometheus.Registry, name string) float64 {
	return histogram(b, reg, name).GetSampleSum()
}

// histogram returns the named histogram in reg.
func histogram(b *testing.B, reg *prometheus.Registry, name string) *dto.Histogram {
	b.Helper()
	mfs, err := reg.Gather()
	require.NoError(b, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	b.Fatalf("no metric %s", name)
	return nil
}

// kafkaEngineColumns returns the Kafka table's columns: the table's, with
// the two timestamp-millis fields as DateTime64(3), because ClickHouse
// 26.7's AvroConfluent reader stores a timestamp-millis value into a
// DateTime column modulo 2^32 instead of dividing it by 1000.
func kafkaEngineColumns() (defs, selects []string) {
	for _, c := range schema.Columns() {
		switch c.Name {
		case "receivedAt", "eventTime":
			defs = append(defs, "`"+c.Name+"` DateTime64(3)")
			selects = append(selects, "toDateTime(`"+c.Name+"`) AS `"+c.Name+"`")
		default:
			defs = append(defs, "`"+c.Name+"` "+c.CHType)
			selects = append(selects, "`"+c.Name+"`")
		}
	}
	return defs, selects
}

// Kafka table settings of BenchmarkKafkaEngine, its fastest here: two
// consumers (one per core; 33k rows/s against 22-26k with one), each on its
// own thread, blocks as large as the loader's default batch.
const (
	kafkaConsumers = 2
	kafkaBlock     = 100_000
)

// BenchmarkKafkaEngine is the comparison for BenchmarkLoad: ClickHouse's
// own Kafka table engine (AvroConfluent through the same registry) and a
// materialized view load the same topic into the same table inside the
// same embedded engine. Each iteration creates a fresh table, Kafka table
// (new consumer group) and view, and is timed from creating the view until
// the table holds every row; "rows/s-after-join" starts the clock when
// system.kafka_consumers shows all partitions assigned instead. The view
// inserts with the server's settings (optimize_on_insert=1).
func BenchmarkKafkaEngine(b *testing.B) {
	f := newBenchFixture(b, true)
	defs, selects := kafkaEngineColumns()
	kq := "`" + f.db + "`.`bench_kafka_queue`"
	mv := "`" + f.db + "`.`bench_kafka_mv`"
	b.ResetTimer()
	var total, steady, join, firstRow time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f.resetTable(b)
		require.NoError(b, f.w.Exec(b.Context(), "DROP TABLE IF EXISTS "+mv+" SYNC"))
		require.NoError(b, f.w.Exec(b.Context(), "DROP TABLE IF EXISTS "+kq+" SYNC"))
		require.NoError(b, f.w.Exec(b.Context(), fmt.Sprintf(`CREATE TABLE %s (%s) ENGINE = Kafka SETTINGS
			kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = 'bench-kafka-%d-%d',
			kafka_format = 'AvroConfluent', format_avro_schema_registry_url = '%s',
			kafka_num_consumers = %d, kafka_thread_per_consumer = 1,
			kafka_max_block_size = %d, kafka_poll_max_batch_size = %d,
			kafka_flush_interval_ms = 500, kafka_poll_timeout_ms = 200`,
			kq, strings.Join(defs, ", "), strings.Join(f.cluster.Addrs(), ","), topic, time.Now().UnixNano(), i,
			f.reg.URL(), kafkaConsumers, kafkaBlock, kafkaBlock)))
		b.StartTimer()
		start := time.Now()
		require.NoError(b, f.w.Exec(b.Context(), fmt.Sprintf("CREATE MATERIALIZED VIEW %s TO %s AS SELECT %s FROM %s",
			mv, f.table, strings.Join(selects, ", "), kq)))
		assigned := f.waitAssigned(b, "bench_kafka_queue")
		first := f.waitRows(b)
		end := time.Now()
		total += end.Sub(start)
		steady += end.Sub(assigned)
		join += assigned.Sub(start)
		firstRow += first.Sub(start)
		b.StopTimer()
		f.checkValues(b)
		require.NoError(b, f.w.Exec(b.Context(), "DROP TABLE "+mv+" SYNC"))
		require.NoError(b, f.w.Exec(b.Context(), "DROP TABLE "+kq+" SYNC"))
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRows)*float64(b.N)/total.Seconds(), "rows/s")
	b.ReportMetric(float64(benchRows)*float64(b.N)/steady.Seconds(), "rows/s-after-join")
	b.ReportMetric(join.Seconds()/float64(b.N), "s-join")
	b.ReportMetric(firstRow.Seconds()/float64(b.N), "s-first-row")
}
