package collect

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditpipe/auditpipe/pkg/contract"

	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// Metrics are the per-source collection metrics, labelled by source_id
// (bounded by the configured sources) and, for errors, by a closed class.
type Metrics struct {
	published    *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	pages        *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	rateLimited  *prometheus.CounterVec
	errors       *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	txns         *prometheus.CounterVec
	dedupSize    *prometheus.GaugeVec
	dedupEvicted *prometheus.CounterVec
	stateBytes   *prometheus.GaugeVec
	pageCommit   *prometheus.HistogramVec
	authOK       *prometheus.GaugeVec
	concatenated *prometheus.CounterVec
	dlq          *contract.DLQCounter
}

// Error classes beyond upstream's (and ClassPagination).
const (
	ClassKafka = "kafka"
	ClassState = "state"
	// ClassSession: a source's session could not start (its producer, its
	// state read back).
	ClassSession = "session"
)

// NewMetrics registers the metrics on reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	const ns, sub = "auditpipe", "poller"
	src := []string{"source_id"}
	m := &Metrics{
		published:    prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_published_total", Help: "Events committed to the raw topic."}, src),
		duplicates:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_duplicate_total", Help: "Events fetched again (overlap, re-scan) and dropped because they were already published."}, src),
		pages:        prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pages_fetched_total", Help: "Audit log pages fetched and decoded."}, src),
		latency:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "api_request_duration_seconds", Help: "Latency of audit log API requests (every attempt).", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10)}, src),
		rateLimited:  prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "api_rate_limited_total", Help: "HTTP 429 answers."}, src),
		errors:       prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "errors_total", Help: "Failures by class: auth, rate_limit, server, network, decode, client, redirect (per attempt), pagination (per cycle), kafka, state, session."}, []string{"source_id", "class"}),
		lag:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "watermark_lag_seconds", Help: "Now minus the oldest stream cursor of the source."}, src),
		lastSuccess:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_success_timestamp_seconds", Help: "Unix time of the last poll cycle that completed without error."}, src),
		txns:         prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transactions_total", Help: "Kafka transactions by outcome (committed, failed)."}, []string{"source_id", "outcome"}),
		dedupSize:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "dedup_ids", Help: "Event ids held in the dedup memory."}, src),
		dedupEvicted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dedup_evicted_total", Help: "Ids forgotten because the dedup memory was full (the floor rose over them): raise dedup_capacity or shorten rescan_window."}, src),
		stateBytes:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "state_record_bytes", Help: "Size of the last state record written."}, src),
		pageCommit:   prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "page_to_commit_seconds", Help: "Time from a page's arrival to the commit of its events.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 12)}, src),
		authOK:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "source_authenticated", Help: "1 while the source's admin key is accepted, 0 after a 401/403."}, src),
		concatenated: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "concatenated_responses_total", Help: "Responses that held several concatenated JSON documents (merged)."}, src),
	}
	dlq, err := contract.NewDLQCounter(reg, contract.StagePoller, ReasonTooLarge)
	if err != nil {
		panic(err) // as MustRegister below: a clash is a programming error
	}
	m.dlq = dlq
	reg.MustRegister(m.published, m.duplicates, m.pages, m.latency, m.rateLimited, m.errors, m.lag, m.lastSuccess,
		m.txns, m.dedupSize, m.dedupEvicted, m.stateBytes, m.pageCommit, m.authOK, m.concatenated)
	return m
}

// OnAttempt returns the upstream.Config.OnAttempt hook of a source.
func (m *Metrics) OnAttempt(sourceID string) func(upstream.Attempt) {
	lat := m.latency.WithLabelValues(sourceID)
	rl := m.rateLimited.WithLabelValues(sourceID)
	// Export zeros for every class, so that dashboards and alerts see the
	// series before the first failure.
	for _, c := range []string{string(upstream.ClassAuth), string(upstream.ClassRateLimit), string(upstream.ClassServer),
		string(upstream.ClassNetwork), string(upstream.ClassDecode), string(upstream.ClassClient), string(upstream.ClassRedirect),
		ClassPagination, ClassKafka, ClassState, ClassSession} {
		m.errors.WithLabelValues(sourceID, c)
	}
	return func(a upstream.Attempt) {
		lat.Observe(a.Duration.Seconds())
		if a.Class == upstream.ClassRateLimit {
			rl.Inc()
		}
		if a.Class != "" {
			m.errors.WithLabelValues(sourceID, string(a.Class)).Inc()
		}
	}
}
