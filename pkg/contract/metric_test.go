package contract_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/contract"
)

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
