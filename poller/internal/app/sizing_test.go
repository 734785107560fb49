package app

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

func withSources(c Config, n int) Config {
	c.Sources = nil
	for i := range n {
		c.Sources = append(c.Sources, SourceConfig{SourceID: fmt.Sprintf("org-%d", i), WorkspaceID: "w", AdminKey: config.NewSecret("sk-admin-x")})
	}
	return c
}

func TestPollerBudget(t *testing.T) {
	tests := []struct {
		name     string
		sources  int
		set      func(*Config)
		slices   int      // 0: not checked
		problems []string // empty: valid
	}{
		{"default, one source", 1, nil, 1, nil},
		{"default, eight sources share one slice at a time", 8, nil, 1, nil},
		{"default, ten sources do not fit", 10, nil, 0, []string{"memory.limit: 10 sources need 34 MiB"}},
		{"1 GiB, ten sources collect at once", 10, func(c *Config) { c.Memory.Limit = config.GiB }, 10, nil},
		{"no budget", 1000, func(c *Config) { c.Memory.Limit = 0 }, 64, nil},
		{"1000 sources do not fit 128 MiB", 1000, nil, 0, []string{
			"memory.limit: 1000 sources need", "split the sources over poller deployments", "raise memory.limit to at least",
		}},
		{"1000 sources at 2 GiB with the full dedup capacity", 1000, func(c *Config) { c.Memory.Limit = 2 * config.GiB }, 0, []string{
			"lower collection.dedup_capacity to at most", "split the sources",
		}},
		{"1000 sources at 1 GiB with a small dedup capacity", 1000, func(c *Config) {
			c.Memory.Limit, c.Collection.DedupCapacity = config.GiB, 10_000
		}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := withSources(DefaultConfig(), tc.sources)
			if tc.set != nil {
				tc.set(&c)
			}
			err := config.Validate(c)
			if len(tc.problems) == 0 {
				require.NoError(t, err)
			}
			for _, p := range tc.problems {
				require.ErrorContains(t, err, p)
			}
			if tc.slices != 0 {
				require.Equal(t, tc.slices, c.Slices())
			}
		})
	}
}
