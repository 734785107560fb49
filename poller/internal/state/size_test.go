package state

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDedupBytesPerID measures the heap a full dedup memory takes per id
// (runtime.MemStats), which the poller's memory model counts as 32 bytes
// per id of collection.dedup_capacity (poller/internal/app/sizing.go).
func TestDedupBytesPerID(t *testing.T) {
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "audit_log-" + strconv.Itoa(i)
	}
	before := heapAlloc()
	var d Dedup
	for i, id := range ids {
		d.Add(id, int64(i))
	}
	after := heapAlloc()
	runtime.KeepAlive(ids)
	runtime.KeepAlive(&d)
	perID := float64(after-before) / n
	t.Logf("dedup memory: %.1f bytes per id with %d ids", perID, n)
	require.Greater(t, perID, 16.0, "a hash and a time take 16 bytes in a map")
	require.LessOrEqual(t, perID, 32.0, "the poller's memory model counts 32 bytes per id")
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
