// Package openaisimtest starts an openaisim.Simulator for tests.
package openaisimtest

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// Start serves a new Simulator on 127.0.0.1 at a free port, starts its live
// generator when cfg.RatePerMinute > 0, and stops everything (including
// requests held by timeout faults) when the test ends. Use sim.URL()+"/v1"
// as the OpenAI base URL.
func Start(t testing.TB, cfg openaisim.Config) *openaisim.Simulator {
	t.Helper()
	return StartWithLogger(t, cfg, slog.New(slog.DiscardHandler))
}

// StartWithLogger is Start with a logger.
func StartWithLogger(t testing.TB, cfg openaisim.Config, logger *slog.Logger) *openaisim.Simulator {
	t.Helper()
	sim, err := openaisim.New(cfg, logger)
	if err != nil {
		t.Fatalf("openaisimtest: %v", err)
	}
	ln, err := sim.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("openaisimtest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, ln) }()
	if cfg.RatePerMinute > 0 {
		sim.Start(ctx)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("openaisimtest: %v", err)
		}
		sim.Close()
	})
	return sim
}

// Compare checks what a collector published against the simulator's ground
// truth. published holds the event ids as delivered, in any order, one
// entry per delivery. It returns the ids delivered more than once and the
// ground-truth ids never delivered, each sorted; both are empty when every
// event came exactly once. Ids unknown to the simulator count as
// duplicates of nothing: they are returned in unknown.
func Compare(sim *openaisim.Simulator, published []string) (dups, lost, unknown []string) {
	truth := map[string]bool{}
	for _, ev := range sim.GroundTruth() {
		truth[ev.ID] = true
	}
	seen := map[string]int{}
	for _, id := range published {
		seen[id]++
	}
	for id, n := range seen {
		switch {
		case !truth[id]:
			unknown = append(unknown, id)
		case n > 1:
			dups = append(dups, id)
		}
	}
	for id := range truth {
		if seen[id] == 0 {
			lost = append(lost, id)
		}
	}
	slices.Sort(dups)
	slices.Sort(lost)
	slices.Sort(unknown)
	return dups, lost, unknown
}
