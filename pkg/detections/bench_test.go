package detections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// BenchmarkRefreshAll runs every rule once (SYSTEM REFRESH VIEW, then WAIT)
// over a simulated organization's log: events spread over the last two
// hours (the default lookback), plus every attack scenario, all received
// now. Each iteration finds nothing new after the first (findings are
// inserted once), so it measures the steady-state cost of a refresh.
func BenchmarkRefreshAll(b *testing.B) {
	for _, n := range []int{2_000, 20_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			e := newEnv(b)
			sim, err := openaisim.New(openaisim.Config{Seed: 1, Backlog: n, BacklogSpan: 2 * time.Hour}, nil)
			require.NoError(b, err)
			defer sim.Close()
			_, err = sim.Attack(openaisim.AttackAll, time.Time{})
			require.NoError(b, err)
			evs := sim.GroundTruth()
			for i := 0; i < len(evs); i += 5000 {
				e.insertRaw("bench", evs[i:min(i+5000, len(evs))])
			}
			b.ResetTimer()
			for b.Loop() {
				require.NoError(b, detections.RunNow(b.Context(), e.conn, e.opts))
			}
			b.ReportMetric(float64(len(evs)), "events")
		})
	}
}
