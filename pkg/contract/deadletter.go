package contract

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxErrorBytes bounds the HeaderDLQError value.
const MaxErrorBytes = 1024

// DeadLetter returns the dead-letter record of r for topic: r's key and
// value unchanged (shared, not copied), r's headers followed by the seven
// dlq_* headers. msg is cut to MaxErrorBytes; at is the dead-lettering
// time. r is not modified.
func DeadLetter(topic string, r *kgo.Record, stage Stage, reason, msg string, at time.Time) *kgo.Record {
	if len(msg) > MaxErrorBytes {
		msg = msg[:MaxErrorBytes]
	}
	h := make([]kgo.RecordHeader, 0, len(r.Headers)+7)
	h = append(h, r.Headers...)
	h = append(h,
		kgo.RecordHeader{Key: HeaderDLQStage, Value: []byte(stage)},
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(msg)},
		kgo.RecordHeader{Key: HeaderDLQTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderDLQTime, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
	)
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: h}
}

// DLQMetricName is the one dead-letter metric of every stage, labelled
// stage and reason.
const DLQMetricName = "auditpipe_dlq_records_total"

// DLQCounter counts the dead letters one stage has written, on the shared
// DLQMetricName series. It is safe for concurrent use.
type DLQCounter struct {
	vec   *prometheus.CounterVec
	stage Stage
}

// NewDLQCounter returns stage's counter and registers the metric with reg
// (nil: not exported). Every reason in reasons starts at 0, so that the
// series exist for alerting before the first dead letter. A second stage
// registering with the same reg shares the metric.
func NewDLQCounter(reg prometheus.Registerer, stage Stage, reasons ...string) (*DLQCounter, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DLQMetricName,
		Help: "Records written to the dead-letter topic, by the stage that wrote them and the reason (the dlq_stage and dlq_reason headers).",
	}, []string{"stage", "reason"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			if !ok {
				return nil, fmt.Errorf("registering %s: %w", DLQMetricName, err)
			}
			if vec, ok = are.ExistingCollector.(*prometheus.CounterVec); !ok {
				return nil, fmt.Errorf("registering %s: registered as a %T", DLQMetricName, are.ExistingCollector)
			}
		}
	}
	for _, r := range reasons {
		vec.WithLabelValues(string(stage), r)
	}
	return &DLQCounter{vec: vec, stage: stage}, nil
}

// Add counts n dead letters of reason.
func (c *DLQCounter) Add(reason string, n int) {
	c.vec.WithLabelValues(string(c.stage), reason).Add(float64(n))
}
