package collect

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSlotsBoundConcurrentSlices(t *testing.T) {
	s := NewSlots(2)
	ctx := t.Context()
	require.NoError(t, s.acquire(ctx))
	require.NoError(t, s.acquire(ctx))
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.acquire(short), context.DeadlineExceeded, "a third slice waits for a free slot")
	s.release()
	require.NoError(t, s.acquire(ctx), "a released slot is taken again")
	var none *Slots
	require.NoError(t, none.acquire(ctx), "no slots: unbounded")
	none.release()
}
