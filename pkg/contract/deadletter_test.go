package contract_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
