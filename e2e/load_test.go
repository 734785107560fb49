package e2e_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// BenchmarkPipelineLoad pushes a simulated backlog (1M events by default;
// AUDITPIPE_E2E_LOAD_EVENTS changes it) through the three services running
// as processes on kfake, srfake and the embedded ClickHouse, and reports
// end-to-end throughput and the latency of live events created while the
// backlog drains. `make bench` runs it.
func BenchmarkPipelineLoad(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("AUDITPIPE_E2E_LOAD_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("AUDITPIPE_E2E_LOAD_EVENTS: %v", err)
		}
	}
	for i := 0; i < b.N; i++ {
		if i > 0 {
			break // one run is the measurement; it takes minutes
		}
		runLoad(b, n)
	}
}

func runLoad(b *testing.B, n int) {
	p := startPipeline(b, pipelineOptions{
		sim: openaisim.Config{Seed: 99, Backlog: n, BacklogSpan: time.Hour},
		// The backlog (a million events in an hour) is far above the
		// poller's dedup bound for its default 24 h re-scan window, and a
		// re-scan re-reads the whole backlog: keep re-scans out of the
		// measured minutes.
		extraEnv: map[string][]string{
			"poller": append(sourceEnv(), "AUDITPIPE_POLLER_SOURCES__0__RESCAN_INTERVAL=1h"),
			// The pipeline alone: the detections' refreshes would share the
			// cores (pkg/detections BenchmarkRefreshAll measures them).
			"loader": {"AUDITPIPE_LOADER_CLICKHOUSE__DETECTIONS__INSTALL=false"},
		},
	})
	rss := watchRSS(b, p, 500*time.Millisecond)
	start := time.Now()
	deadline := start.Add(30 * time.Minute)
	// When each stage has seen every event: the raw and enriched topics'
	// end offsets (which also count transaction markers, so they pass n a
	// little early) and the rows in ClickHouse.
	var rawAt, enrichedAt time.Duration
	for time.Now().Before(deadline) {
		if rawAt == 0 && endOffsets(b, p, "openai-audit-raw") >= int64(n) {
			rawAt = time.Since(start)
		}
		if enrichedAt == 0 && endOffsets(b, p, "openai-audit-enriched") >= int64(n) {
			enrichedAt = time.Since(start)
		}
		out, err := p.query("SELECT count() FROM openai_audit_logs")
		if err == nil && strings.TrimSpace(out) == fmt.Sprint(n) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.Logf("stages: raw topic complete after %s, enriched after %s, ClickHouse after %s", rawAt.Round(time.Millisecond), enrichedAt.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	got := strings.TrimSpace(must(p.query("SELECT count() FROM openai_audit_logs")))
	if got != fmt.Sprint(n) {
		b.Fatalf("after %s: %s of %d rows", elapsed, got, n)
	}
	// Steady state: how long does a new event take to become queryable?
	p50, p95 := measureLatency(b, p)
	rss.Stop()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p95.Milliseconds()), "p95-ms")
	var peaks []string
	for _, svc := range []string{"poller", "enricher", "loader"} {
		mb := float64(rss.Peak(svc)) / (1 << 20)
		b.ReportMetric(mb, svc+"-peak-RSS-MiB")
		peaks = append(peaks, fmt.Sprintf("%s %.0f MiB", svc, mb))
	}
	b.Logf("%d events end to end in %s (%.0f events/s); live-event latency p50 %s p95 %s; peak RSS %s", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), p50, p95, strings.Join(peaks, ", "))
}

func must(s string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}
