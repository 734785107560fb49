package openaisim_test

import (
	"net/url"
	"testing"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
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
