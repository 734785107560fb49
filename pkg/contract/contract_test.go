package contract_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/contract"
)

func TestDeadLetter(t *testing.T) {
	at := time.Date(2026, 11, 20, 13, 0, 0, 5, time.FixedZone("x", 3600))
	orig := &kgo.Record{Topic: contract.TopicRaw, Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: contract.HeaderSourceID, Value: []byte("src")}}}
	tests := []struct {
		name, msg, wantErr string
	}{
		{name: "short message", msg: "boom", wantErr: "boom"},
		{name: "long message is cut", msg: strings.Repeat("x", contract.MaxErrorBytes+10), wantErr: strings.Repeat("x", contract.MaxErrorBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := contract.DeadLetter(contract.TopicDLQ, orig, contract.StageLoader, "clickhouse_rejected", tt.msg, at)
			assert.Equal(t, contract.TopicDLQ, d.Topic)
			assert.Equal(t, orig.Key, d.Key)
			assert.Equal(t, orig.Value, d.Value)
			got := map[string]string{}
			var order []string
			for _, h := range d.Headers {
				got[h.Key] = string(h.Value)
				order = append(order, h.Key)
			}
			assert.Equal(t, []string{contract.HeaderSourceID, contract.HeaderDLQStage, contract.HeaderDLQReason, contract.HeaderDLQError,
				contract.HeaderDLQTopic, contract.HeaderDLQPartition, contract.HeaderDLQOffset, contract.HeaderDLQTime}, order)
			assert.Equal(t, map[string]string{
				contract.HeaderSourceID: "src", contract.HeaderDLQStage: "loader", contract.HeaderDLQReason: "clickhouse_rejected",
				contract.HeaderDLQError: tt.wantErr, contract.HeaderDLQTopic: contract.TopicRaw, contract.HeaderDLQPartition: "3",
				contract.HeaderDLQOffset: "42", contract.HeaderDLQTime: "2026-11-20T12:00:00.000000005Z",
			}, got)
			assert.Len(t, orig.Headers, 1, "the original record keeps its headers")
		})
	}
}

func TestDLQCounterStartsAtZeroAndIsShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	enr, err := contract.NewDLQCounter(reg, contract.StageEnricher, "invalid_json", "invalid_ip")
	require.NoError(t, err)
	ldr, err := contract.NewDLQCounter(reg, contract.StageLoader, "avro_decode")
	require.NoError(t, err)
	assert.Equal(t, 3, testutil.CollectAndCount(reg, contract.DLQMetricName), "every known pair exists before the first dead letter")

	enr.Add("invalid_json", 2)
	ldr.Add("avro_decode", 1)
	ldr.Add("clickhouse_rejected", 1)
	want := `
# HELP auditpipe_dlq_records_total Records written to the dead-letter topic, by the stage that wrote them and the reason (the dlq_stage and dlq_reason headers).
# TYPE auditpipe_dlq_records_total counter
auditpipe_dlq_records_total{reason="avro_decode",stage="loader"} 1
auditpipe_dlq_records_total{reason="clickhouse_rejected",stage="loader"} 1
auditpipe_dlq_records_total{reason="invalid_ip",stage="enricher"} 0
auditpipe_dlq_records_total{reason="invalid_json",stage="enricher"} 2
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), contract.DLQMetricName))
}

func TestDLQCounterRejectsAClashingMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: contract.DLQMetricName, Help: "x"})))
	_, err := contract.NewDLQCounter(reg, contract.StageLoader)
	require.Error(t, err)
}
