package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/enricher/internal/avroenc"
	"github.com/auditpipe/auditpipe/enricher/internal/geo"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// newProcessor returns a Processor over all five synthetic databases of the
// simulator's networks and a registry-backed serde.
func newProcessor(tb testing.TB) *Processor {
	tb.Helper()
	paths, err := mmdbgen.Write(tb.TempDir(), mmdbgen.SimulatorNetworks())
	require.NoError(tb, err)
	cfg := geo.DefaultConfig()
	cfg.City, cfg.ASN, cfg.ISP, cfg.ConnectionType, cfg.Enterprise = paths.City, paths.ASN, paths.ISP, paths.ConnectionType, paths.Enterprise
	g, err := geo.New(cfg, nil, nil)
	require.NoError(tb, err)
	reg := kafkatest.NewFakeSchemaRegistry(tb)
	_, id, err := schema.NewSerde(context.Background(), reg.Client(tb), contract.SubjectEnriched, true)
	require.NoError(tb, err)
	enc, err := avroenc.New(id)
	require.NoError(tb, err)
	return &Processor{Geo: g, Encode: enc.EncodeBuffer, Recycle: enc.Release, MaxOutputBytes: 1_000_000}
}

func rawRecords(tb testing.TB, n int) []*kgo.Record {
	tb.Helper()
	sim, err := openaisim.New(openaisim.Config{Seed: 11}, nil)
	require.NoError(tb, err)
	evs := sim.Generate(n)
	out := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		out[i] = &kgo.Record{Topic: "openai-audit-raw", Key: []byte(ev.ID), Value: ev.Raw, Timestamp: time.Now(),
			Headers: []kgo.RecordHeader{
				{Key: "workspace_id", Value: []byte("ws_1")}, {Key: "source_id", Value: []byte("src_1")},
				{Key: "source_type", Value: []byte("openai")}, {Key: "source_ttl", Value: []byte("30")},
				{Key: "received_at", Value: []byte("2026-11-20T12:00:00Z")},
			}}
	}
	return out
}

// BenchmarkProcess measures normalize + geo + Avro encode of one event on
// one goroutine (ns/op is per event), recycling each output buffer as the
// pipeline does. The address cache sees the
// simulator's realistic reuse of session addresses.
func BenchmarkProcess(b *testing.B) {
	p := newProcessor(b)
	recs := rawRecords(b, 4096)
	processLoop(b, p, recs)
}

// processLoop processes recs round-robin, one per iteration, recycling each
// output as the pipeline does once the record is produced.
func processLoop(b *testing.B, p *Processor, recs []*kgo.Record) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o, err := p.Process(recs[i%len(recs)])
		if err != nil {
			b.Fatal(err)
		}
		p.Done(o.Value)
		i++
	}
}

// BenchmarkProcessUncached is BenchmarkProcess with the cache disabled.
func BenchmarkProcessUncached(b *testing.B) {
	p := newProcessor(b)
	cfg := geo.DefaultConfig()
	paths, err := mmdbgen.Write(b.TempDir(), mmdbgen.SimulatorNetworks())
	require.NoError(b, err)
	cfg.City, cfg.ASN, cfg.ISP, cfg.ConnectionType, cfg.Enterprise = paths.City, paths.ASN, paths.ISP, paths.ConnectionType, paths.Enterprise
	cfg.CacheSize = 0
	p.Geo, err = geo.New(cfg, nil, nil)
	require.NoError(b, err)
	recs := rawRecords(b, 4096)
	processLoop(b, p, recs)
}

const benchEvents = 50_000

// Transforms compared by BenchmarkPipeline.
const (
	modeEnrich  = iota // Processor.Process
	modePass           // a copy of the raw value
	modeCeiling        // the record's precomputed enriched value
)

// pipelineRun is the outcome of one pipeline run.
type pipelineRun struct {
	rate     float64 // events/s, wall clock
	cpuPerEv float64 // process CPU (user + system) per event, µs
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}

// runPipeline times one pipeline over benchEvents pre-produced records on
// a fresh kfake cluster with the transform of mode (pre holds the
// enriched values by key for modeCeiling).
func runPipeline(b *testing.B, proc *Processor, recs []*kgo.Record, mode int, pre map[string][]byte) pipelineRun {
	b.Helper()
	c := kafkatest.NewCluster(b, kfake.SeedTopics(4, "openai-audit-raw", "openai-audit-enriched", "openai-audit-dlq"))
	prod := c.Client(b, kgo.MaxBufferedRecords(benchEvents))
	for _, r := range recs {
		r.Partition, r.Offset = 0, 0
	}
	require.NoError(b, prod.ProduceSync(context.Background(), recs...).FirstErr())
	cfg := c.Config()
	if v := os.Getenv("ENRICHER_BENCH_COMPRESSION"); v != "" {
		cfg.Compression = v
	}
	base, err := cfg.Options(nil, nil, "bench")
	require.NoError(b, err)
	p, err := New(Config{InputTopic: "openai-audit-raw", OutputTopic: "openai-audit-enriched", DLQTopic: "openai-audit-dlq",
		Group: "bench", TransactionalID: "bench", MaxPollRecords: envInt("ENRICHER_BENCH_MAX_POLL_RECORDS", 5000), Workers: envInt("ENRICHER_BENCH_WORKERS", 0), EndTimeout: 10 * time.Second}, base, proc, nil, nil)
	require.NoError(b, err)
	switch mode {
	case modePass:
		p.process = func(r *kgo.Record) (Output, error) { return Output{Value: r.Value}, nil }
		p.recycle = func([]byte) {}
	case modeCeiling:
		// The precomputed value itself: nothing writes to it.
		p.process = func(r *kgo.Record) (Output, error) { return Output{Value: pre[string(r.Key)]}, nil }
		p.recycle = func([]byte) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cpu0, start := cpuTime(), time.Now()
	go func() { done <- p.Run(ctx) }()
	for testutil.ToFloat64(p.m.out) < benchEvents {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	cancel()
	require.NoError(b, <-done)
	return pipelineRun{rate: benchEvents / elapsed.Seconds(), cpuPerEv: float64(cpu.Microseconds()) / benchEvents}
}

// BenchmarkPipeline reports enriched events/s through kfake with
// transactions (op = one run of 50,000 events per transform, including the
// group join), the pass-through rate on the same setup, their ratio, and
// the process CPU per event of each. The ceiling transform produces the
// real enriched values at no cost (precomputed, not copied): it shows how much
// of the gap comes from the larger output records rather than from
// processing. ENRICHER_BENCH_COMPRESSION overrides the producer codec
// (zstd), ENRICHER_BENCH_MAX_POLL_RECORDS the records per transaction
// (5000) and ENRICHER_BENCH_WORKERS the transform goroutines (GOMAXPROCS-1),
// for every run.
func BenchmarkPipeline(b *testing.B) {
	proc := newProcessor(b)
	recs := rawRecords(b, benchEvents)
	pre := make(map[string][]byte, len(recs))
	for _, r := range recs {
		o, err := proc.Process(r)
		require.NoError(b, err)
		pre[string(r.Key)] = o.Value
	}
	var sum [3]pipelineRun
	n := 0
	for b.Loop() {
		for mode := range sum {
			r := runPipeline(b, proc, recs, mode, pre)
			sum[mode].rate += r.rate
			sum[mode].cpuPerEv += r.cpuPerEv
		}
		n++
	}
	for i := range sum {
		sum[i].rate /= float64(n)
		sum[i].cpuPerEv /= float64(n)
	}
	enr, pass, ceil := sum[modeEnrich], sum[modePass], sum[modeCeiling]
	b.ReportMetric(enr.rate, "events/s")
	b.ReportMetric(pass.rate, "passthrough-events/s")
	b.ReportMetric(enr.rate/pass.rate, "ratio")
	b.ReportMetric(ceil.rate/pass.rate, "ceiling-ratio")
	fmt.Fprintf(b.Output(), "enriched %.0f events/s (%.1f µs CPU/event), pass-through %.0f events/s (%.1f µs), ratio %.2f; ceiling %.0f events/s (%.1f µs), ratio %.2f\n",
		enr.rate, enr.cpuPerEv, pass.rate, pass.cpuPerEv, enr.rate/pass.rate, ceil.rate, ceil.cpuPerEv, ceil.rate/pass.rate)
}

// envInt reads a benchmark knob from the environment (d when unset).
func envInt(k string, d int) int {
	if v := os.Getenv(k); v != "" {
		n, _ := strconv.Atoi(v)
		return n
	}
	return d
}
