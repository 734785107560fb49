package app

import (
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// BenchmarkBackfill measures a first-start backfill of 5,000 simulator
// events at page size 100 into kfake: events/s published (committed) and
// the mean time from a page's arrival to the commit of its records.
func BenchmarkBackfill(b *testing.B) {
	const events = 5000
	var total time.Duration
	var pageCommitSum, pageCommitCount float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cl := newCluster(b)
		sim := openaisimtest.Start(b, openaisim.Config{Seed: int64(i + 1), Backlog: events, BacklogSpan: 20 * time.Hour})
		src := source("bench", sim, goodKey)
		src.PageSize = 100
		cfg := testConfig(cl, src)
		b.StartTimer()
		start := time.Now()
		p := startPoller(b, cfg)
		for metricValue(b, p, "auditpipe_poller_events_published_total") < events {
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		s, n := histogram(b, p, "auditpipe_poller_page_to_commit_seconds")
		pageCommitSum += s
		pageCommitCount += n
		p.stop()
	}
	b.ReportMetric(float64(events*b.N)/total.Seconds(), "events/s")
	if pageCommitCount > 0 {
		b.ReportMetric(pageCommitSum/pageCommitCount*1000, "ms-page-to-commit")
	}
}

func metricValue(t testing.TB, p *poller, name string) float64 {
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

func histogram(t testing.TB, p *poller, name string) (sum, count float64) {
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
				count += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, count
}
