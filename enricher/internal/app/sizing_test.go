package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

func TestSizingFromBudget(t *testing.T) {
	tests := []struct {
		name      string
		limit     config.ByteSize
		set       func(*Config)
		wantPoll  int // 0: derived from what the budget leaves
		wantFetch config.ByteSize
		wantProd  int
	}{
		{"no budget", 0, nil, 5000, 0, 0},
		{"default 128 MiB", 128 * config.MiB, nil, 0, 2 * config.MiB, 8 << 20},
		{"1 GiB caps at 5000", config.GiB, nil, 5000, 16 * config.MiB, 64 << 20},
		{"explicit keys win", 128 * config.MiB, func(c *Config) {
			c.MaxPollRecords, c.Kafka.MaxBufferedBytes, c.Kafka.FetchMaxBytes = 1000, 8<<20, 2*config.MiB
		}, 1000, 2 * config.MiB, 8 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Memory.Limit = tc.limit
			if tc.set != nil {
				tc.set(&c)
			}
			require.NoError(t, config.Validate(c))
			s := c.Sizing()
			require.Equal(t, tc.wantFetch, s.Kafka.FetchMaxBytes)
			require.Equal(t, tc.wantProd, s.Kafka.MaxBufferedBytes)
			if tc.wantPoll != 0 {
				require.Equal(t, tc.wantPoll, s.MaxPollRecords)
				return
			}
			free := c.free(s)
			require.Equal(t, int(free/(2*recordBytes)), s.MaxPollRecords, "the transaction takes what the budget leaves")
			require.GreaterOrEqual(t, s.MaxPollRecords, minPollRecords)
		})
	}
}

func TestSizingThatCannotFit(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"too many records per transaction", func(c *Config) { c.MaxPollRecords = 50_000 }, "lower max_poll_records"},
		{"cache too large", func(c *Config) { c.Geo.CacheSize = 1 << 20 }, "geo.cache_size 1048576"},
		{"budget too small", func(c *Config) { c.Memory.Limit = 48 * config.MiB }, "raise memory.limit to at least"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c)
			require.ErrorContains(t, config.Validate(c), tc.want)
		})
	}
}

func TestRegisterOnlyIgnoresTheBudget(t *testing.T) {
	c := DefaultConfig()
	c.MaxPollRecords = 50_000
	require.Error(t, config.Validate(c))
	c.RegisterOnly = true
	require.NoError(t, config.Validate(c), "register_only allocates no pipeline buffers")
}
