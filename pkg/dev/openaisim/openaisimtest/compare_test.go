package openaisimtest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

func TestCompare(t *testing.T) {
	sim, err := openaisim.New(openaisim.Config{Seed: 1}, nil)
	require.NoError(t, err)
	evs := sim.Generate(3)
	a, b, c := evs[0].ID, evs[1].ID, evs[2].ID
	for _, tc := range []struct {
		name                 string
		published            []string
		dups, lost, unknowns []string
	}{
		{"exactly once, any order", []string{c, a, b}, nil, nil, nil},
		{"a duplicate", []string{a, b, c, b}, []string{b}, nil, nil},
		{"a loss", []string{a, c}, nil, []string{b}, nil},
		{"an unknown id", []string{a, b, c, "evt-x"}, nil, nil, []string{"evt-x"}},
		{"nothing", nil, nil, []string{a, b, c}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dups, lost, unknown := openaisimtest.Compare(sim, tc.published)
			assert.Equal(t, tc.dups, dups)
			assert.ElementsMatch(t, tc.lost, lost)
			assert.Equal(t, tc.unknowns, unknown)
		})
	}
}
