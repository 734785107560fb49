package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/e2e/kafkabroker"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// TestPipelineOnApacheKafka runs the same scenario as TestPipelineOnKfake
// against a real Apache Kafka 4.x broker (single-node KRaft), and restarts
// the broker mid-stream: nothing may be lost or duplicated.
func TestPipelineOnApacheKafka(t *testing.T) {
	broker := kafkabroker.StartTest(t)
	p := startPipeline(t, pipelineOptions{
		sim:           openaisim.Config{Seed: 7},
		seed:          allTypesBacklog,
		externalKafka: []string{broker.Addr()},
		extraEnv:      map[string][]string{"poller": sourceEnv()},
	})
	runScenario(t, p, &scenarioHooks{midStream: func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		require.NoError(t, broker.Restart(ctx))
		t.Logf("Apache Kafka restarted mid-stream in %s", time.Since(start).Round(time.Millisecond))
	}})
}
