package openaisim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// BenchmarkListPage measures one 100-item page from a 100k-event store.
func BenchmarkListPage(b *testing.B) {
	sim, err := openaisim.New(openaisim.Config{Seed: 1, Backlog: 100000, Now: clock}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	h := sim.Handler()
	q := url.Values{"limit": {"100"}, "effective_at[gte]": {"0"}}
	b.ReportAllocs()
	for b.Loop() {
		w := get(b, h, adminKey, q)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkGenerate measures generating and inserting one live event.
func BenchmarkGenerate(b *testing.B) {
	sim, err := openaisim.New(openaisim.Config{Seed: 1, Now: clock}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	b.ReportAllocs()
	for b.Loop() {
		sim.Generate(1)
	}
}

// BenchmarkInventorySnapshot lists the whole inventory of make run's
// organization (seed 1, a 2,000-event backlog) over loopback HTTP, as a
// collector does, and reports the API requests and objects per snapshot
// (docs/inventory.md, API requests per organization).
func BenchmarkInventorySnapshot(b *testing.B) {
	sim := openaisimtest.Start(b, openaisim.Config{Seed: 1, Backlog: 2000})
	var requests, objects int
	for b.Loop() {
		s := openaisimtest.ListInventory(b.Context(), http.DefaultClient, sim.URL()+"/v1", adminKey)
		requests, objects = s.Requests, 0
		for k, l := range s.Kinds {
			if l.Err != nil {
				b.Fatalf("listing %s: %v", k, l.Err)
			}
			objects += len(l.Objects)
		}
	}
	b.ReportMetric(float64(requests), "requests/snapshot")
	b.ReportMetric(float64(objects), "objects/snapshot")
	b.ReportMetric(float64(requests)*4, "requests/hour@15m")
}
