package assign_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/auditpipe/auditpipe/poller/internal/assign"
)

// The mapping is a contract between replicas of different versions: a
// change would hand a source to two owners during a rolling upgrade. These
// values are FNV-1a 32 of the id modulo the partition count.
func TestPartitionIsStable(t *testing.T) {
	for _, tc := range []struct {
		id    string
		parts int32
		want  int32
	}{
		{"", 12, int32(2166136261 % 12)}, // FNV-1a offset basis
		{"a", 12, int32(0xe40c292c % 12)},
		{"prod-org", 1, 0},
		{"foobar", 7, int32(0xbf9cf968 % 7)},
	} {
		t.Run(fmt.Sprintf("%q/%d", tc.id, tc.parts), func(t *testing.T) {
			assert.Equal(t, tc.want, assign.Partition(tc.id, tc.parts))
		})
	}
}

func TestPartitionSpreadsSources(t *testing.T) {
	const parts, sources = 12, 1200
	count := make([]int, parts)
	for i := range sources {
		p := assign.Partition(fmt.Sprintf("org-%d", i), parts)
		assert.True(t, p >= 0 && p < parts)
		count[p]++
	}
	for p, n := range count {
		assert.InDelta(t, sources/parts, n, sources/parts/2, "partition %d holds %d of %d sources", p, n, sources)
	}
}
