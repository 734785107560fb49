package e2e_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/pkg/openaisim"
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
		sim:      openaisim.Config{Seed: 99, Backlog: n, BacklogSpan: time.Hour},
		extraEnv: map[string][]string{"poller": sourceEnv()},
	})
	start := time.Now()
	var lat []time.Duration
	deadline := start.Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := p.query("SELECT count() FROM openai_audit_logs")
		if err == nil && strings.TrimSpace(out) == fmt.Sprint(n) {
			break
		}
		time.Sleep(time.Second)
	}
	elapsed := time.Since(start)
	got := strings.TrimSpace(must(p.query("SELECT count() FROM openai_audit_logs")))
	if got != fmt.Sprint(n) {
		b.Fatalf("after %s: %s of %d rows", elapsed, got, n)
	}
	// Steady state: how long does a new event take to become queryable?
	for range 20 {
		evs := p.sim.Generate(1)
		created := time.Now()
		q := "SELECT count() FROM openai_audit_logs WHERE eventID = '" + evs[0].ID + "'"
		for time.Since(created) < time.Minute && strings.TrimSpace(must(p.query(q))) != "1" {
			time.Sleep(20 * time.Millisecond)
		}
		lat = append(lat, time.Since(created))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Milliseconds()), "p95-ms")
	b.Logf("%d events end to end in %s (%.0f events/s); live-event latency p50 %s p95 %s", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), lat[len(lat)/2], lat[len(lat)*95/100])
}

func must(s string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}
