package pipeline

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditpipe/auditpipe/pkg/contract"
)

type metrics struct {
	consumed      prometheus.Counter
	rowsInserted  prometheus.Counter
	bytesInserted prometheus.Counter
	batchRows     prometheus.Histogram
	batchBytes    prometheus.Histogram
	insertSeconds prometheus.Histogram
	recordDelay   prometheus.Histogram
	eventDelay    prometheus.Histogram
	inserts       *prometheus.CounterVec
	retries       prometheus.Counter
	dlq           *contract.DLQCounter
	lag           prometheus.Gauge
	buffered      prometheus.Gauge
	bufferedBytes prometheus.Gauge
	commits       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "auditpipe", "loader"
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_consumed_total",
			Help: "Records consumed from the enriched topic."}),
		rowsInserted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rows_inserted_total",
			Help: "Rows acknowledged by ClickHouse (deduplicated retries included)."}),
		bytesInserted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bytes_inserted_total",
			Help: "Kafka record bytes of the rows acknowledged by ClickHouse."}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_rows",
			Help: "Records per flushed batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_bytes",
			Help: "Record bytes per flushed batch.", Buckets: prometheus.ExponentialBuckets(1024, 4, 10)}),
		insertSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "insert_duration_seconds",
			Help: "Duration of one INSERT (one partition range), successful or not.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		recordDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "record_delay_seconds",
			Help:    "Per flushed record, from its Kafka timestamp (when the enricher produced it) to the commit after ClickHouse acknowledged it.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 15)}),
		eventDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "event_delay_seconds",
			Help:    "Per flushed row, from the event's time at the source (eventTime, whole seconds) to the commit after ClickHouse acknowledged it: event to queryable row. Backfills and late arrivals land in the top buckets.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 18)}),
		inserts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "inserts_total",
			Help: "INSERT statements by result: ok, rejected (the rows were bad), error (transient)."}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "flush_retries_total",
			Help: "Flushes retried after a transient failure (ClickHouse, registry or Kafka unavailable)."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "consumer_lag_records",
			Help: "Records between the last consumed offset and the high watermark, summed over the owned partitions."}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "buffered_records",
			Help: "Records buffered and not yet flushed."}),
		bufferedBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "buffered_bytes",
			Help: "Memory accounted to the buffered records: their bytes as consumed plus their decoded rows (batch.max_bytes bounds it)."}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "commits_total",
			Help: "Offset commits by kind (intent, done) and result (ok, error)."}, []string{"kind", "result"}),
	}
	dlq, err := contract.NewDLQCounter(reg, contract.StageLoader, ReasonAvroDecode, ReasonInvalidRecord, ReasonClickHouseRejected)
	if err != nil {
		return nil, err
	}
	m.dlq = dlq
	if reg != nil {
		for _, c := range []prometheus.Collector{m.consumed, m.rowsInserted, m.bytesInserted, m.batchRows, m.batchBytes,
			m.insertSeconds, m.recordDelay, m.eventDelay, m.inserts, m.retries, m.lag, m.buffered, m.bufferedBytes, m.commits} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering loader metrics: %w", err)
			}
		}
	}
	return m, nil
}
