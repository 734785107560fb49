package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

func TestSizingFromBudget(t *testing.T) {
	tests := []struct {
		name        string
		limit       config.ByteSize
		set         func(*Config)
		wantRows    int             // 0: derived from the batch bytes
		wantBytes   config.ByteSize // 0: derived from the budget
		concurrency int
		fetch       config.ByteSize
	}{
		{"no budget", 0, nil, 100_000, 1 << 30, 4, 0},
		{"default 256 MiB", 256 * config.MiB, nil, 0, 0, 4, 4 * config.MiB},
		{"64 MiB", 64 * config.MiB, nil, 0, 0, 2, 1 * config.MiB},
		{"1 GiB", config.GiB, nil, 0, 0, 4, 16 * config.MiB},
		{"explicit keys win", 256 * config.MiB, func(c *Config) {
			c.Batch.MaxRows, c.Batch.MaxBytes, c.Consumer.InsertConcurrency = 5000, 10<<20, 3
			c.Kafka.FetchMaxBytes = 4 * config.MiB
		}, 5000, 10 * config.MiB, 3, 4 * config.MiB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Memory.Limit = tc.limit
			if tc.set != nil {
				tc.set(&c)
			}
			require.NoError(t, config.Validate(c))
			s := c.sizing()
			if tc.wantRows != 0 {
				require.Equal(t, tc.wantRows, s.Batch.MaxRows)
			} else {
				require.Equal(t, min(max(s.Batch.MaxBytes/1024, 1000), 100_000), s.Batch.MaxRows, "one row per KiB of batch, within 1000..100000")
			}
			if tc.wantBytes != 0 {
				require.Equal(t, int(tc.wantBytes), s.Batch.MaxBytes)
			} else {
				free := heapBudget(c) - reserve - fetchCopies*s.Kafka.FetchMaxBytes
				require.InDelta(t, float64(free/batchCopies), float64(s.Batch.MaxBytes), 1, "the batch takes its whole share")
			}
			require.Equal(t, tc.concurrency, s.InsertConcurrency)
			require.Equal(t, tc.fetch, s.Kafka.FetchMaxBytes)
			if tc.limit > 0 {
				used := reserve + fetchCopies*s.Kafka.FetchMaxBytes + batchCopies*config.ByteSize(s.Batch.MaxBytes)
				require.LessOrEqual(t, used, heapBudget(c), "the derived sizes fit the budget")
			}
			pc := c.pipelineConfig()
			require.Equal(t, s.Batch, pc.Batch)
			require.Equal(t, s.InsertConcurrency, pc.InsertConcurrency)
		})
	}
}

func TestSizingThatCannotFit(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		want []string
	}{
		{"batch too large for the budget", func(c *Config) { c.Batch.MaxBytes = 200 << 20 }, []string{
			"batch.max_bytes: 200 MiB does not fit memory.limit 256 MiB", "lower batch.max_bytes to at most 23 MiB", "raise memory.limit to at least 1",
		}},
		{"budget too small", func(c *Config) { c.Memory.Limit = 48 * config.MiB }, []string{
			"memory.limit: 48 MiB leaves less than 256 KiB for a batch", "raise memory.limit to at least 64 MiB",
		}},
		{"fetches alone too large", func(c *Config) {
			c.Memory.Limit, c.Kafka.FetchMaxBytes, c.Batch.MaxBytes = 64*config.MiB, 16*config.MiB, 1<<20
		}, []string{"lower kafka.fetch_max_bytes"}},
		{"negative", func(c *Config) { c.Batch.MaxRows = -1 }, []string{"must not be negative (0: derived from memory.limit)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c)
			err := config.Validate(c)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestMigrateOnlyIgnoresTheBudget(t *testing.T) {
	c := DefaultConfig()
	c.Batch.MaxBytes = 200 << 20
	require.Error(t, config.Validate(c))
	c.MigrateOnly = true
	require.NoError(t, config.Validate(c), "migrate_only allocates no pipeline buffers")
}
