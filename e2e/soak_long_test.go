//go:build soak

package e2e_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/e2e/kafkabroker"
)

// longSoak is the soak of `make soak`: faults every 10 to 30 s, as a bad day
// on a user's cluster looks.
var longSoak = soakSettings{
	minGap: 10 * time.Second, maxGap: 30 * time.Second,
	settle: 5 * time.Minute, session: 6 * time.Second, ratePerMinute: 600,
}

// TestChaosSoakLong runs the chaos soak for AUDITPIPE_SOAK_DURATION (30m by
// default) on kfake and again on Apache Kafka, split over the seeds
// (AUDITPIPE_SOAK_SEEDS, or three drawn from the clock), and logs each
// run's report: faults injected, events, lost, duplicated, longest wait for
// progress, convergence after the last fault.
func TestChaosSoakLong(t *testing.T) {
	total := 30 * time.Minute
	if v := os.Getenv("AUDITPIPE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "AUDITPIPE_SOAK_DURATION")
		total = d
	}
	seeds := soakSeeds(t, 3)
	s := longSoak
	s.chaos = total / time.Duration(len(seeds))
	var reports []string
	t.Cleanup(func() {
		for _, r := range reports {
			t.Log(r)
		}
	})
	for _, flavour := range []string{"kfake", "apache-kafka"} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", flavour, seed), func(t *testing.T) {
				var ext *externalBroker
				if flavour == "apache-kafka" {
					b := kafkabroker.StartTest(t)
					ext = &externalBroker{addr: b.Addr(), restart: b.Restart}
				}
				r := runSoak(t, seed, s, ext)
				reports = append(reports, flavour+" "+r.String())
			})
		}
	}
}
