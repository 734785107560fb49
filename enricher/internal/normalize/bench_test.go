package normalize_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// BenchmarkNormalize measures Normalize alone over a mix of generated
// events (ns/op is per event).
func BenchmarkNormalize(b *testing.B) {
	sim, err := openaisim.New(openaisim.Config{Seed: 5}, nil)
	require.NoError(b, err)
	evs := sim.Generate(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := normalize.Normalize(evs[i%len(evs)].Raw, testMeta); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkNormalizeShared measures NormalizeShared reusing one Result,
// as the pipeline's Processor does (ns/op is per event).
func BenchmarkNormalizeShared(b *testing.B) {
	sim, err := openaisim.New(openaisim.Config{Seed: 5}, nil)
	require.NoError(b, err)
	evs := sim.Generate(1024)
	var r normalize.Result
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := normalize.NormalizeShared(&r, evs[i%len(evs)].Raw, testMeta); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
