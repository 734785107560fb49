package e2e_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// TestLoaderTinyMemoryBudget runs the pipeline with the loader at a 64 MiB
// budget: it sizes itself down to small batches (a few hundred rows) and
// still loads a 5,000-event backlog with every event exactly once, without
// a stall.
func TestLoaderTinyMemoryBudget(t *testing.T) {
	p := startPipeline(t, pipelineOptions{
		sim: openaisim.Config{Seed: 64, Backlog: 5000, BacklogSpan: 2 * time.Hour},
		extraEnv: map[string][]string{
			"poller": sourceEnv(),
			"loader": {"AUDITPIPE_LOADER_MEMORY__LIMIT=64MiB", "AUDITPIPE_LOADER_CLICKHOUSE__DETECTIONS__INSTALL=false"},
		},
	})
	rss := watchRSS(t, p, 500*time.Millisecond)
	start := time.Now()
	assertExactlyOnce(t, p)
	rss.Stop()

	m := regexp.MustCompile(`sized from memory.limit.*memory_limit="?64 MiB"?.*batch_max_rows=(\d+)`).FindStringSubmatch(p.out.tail(20000))
	require.NotNil(t, m, "the loader logs the sizes it derived from memory.limit")
	rows, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.Less(t, rows, 5000, "a 64 MiB budget makes batches smaller than the backlog")
	t.Logf("loader at memory.limit 64 MiB: batches of at most %d rows; 5,000 events exactly once in %s; peak RSS loader %d MiB",
		rows, time.Since(start).Round(time.Millisecond), rss.Peak("loader")>>20)
}
