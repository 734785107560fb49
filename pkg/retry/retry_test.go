package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/retry"
)

// recordingClock records the delays instead of sleeping.
type recordingClock struct{ slept []time.Duration }

func (c *recordingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	return ctx.Err()
}

func TestDelayBounds(t *testing.T) {
	tests := []struct {
		name           string
		p              retry.Policy
		attempt        int
		wantLo, wantHi time.Duration
	}{
		{"first attempt", retry.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}, 1, 50 * time.Millisecond, 100 * time.Millisecond},
		{"third attempt doubles twice", retry.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}, 3, 50 * time.Millisecond, 400 * time.Millisecond},
		{"capped at Max", retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second}, 30, 50 * time.Millisecond, time.Second},
		{"huge attempt does not overflow", retry.Policy{Initial: time.Second, Max: 1<<62 + 1}, 1000, 500 * time.Millisecond, 1<<62 + 1},
		{"Max below Initial counts as Initial", retry.Policy{Initial: time.Second, Max: time.Millisecond}, 5, 500 * time.Millisecond, time.Second},
		{"zero policy does not wait", retry.Policy{}, 3, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.p, tt.p
			lo.Jitter = func(int64) int64 { return 0 }
			hi.Jitter = func(n int64) int64 { return n - 1 }
			assert.Equal(t, tt.wantLo, lo.Delay(tt.attempt), "lowest draw")
			assert.Equal(t, tt.wantHi, hi.Delay(tt.attempt), "highest draw")
			for range 100 {
				d := tt.p.Delay(tt.attempt)
				require.GreaterOrEqual(t, d, tt.wantLo)
				require.LessOrEqual(t, d, tt.wantHi)
			}
		})
	}
}

func TestDo(t *testing.T) {
	errTransient := errors.New("transient")
	errBad := errors.New("bad input")
	tests := []struct {
		name      string
		results   []error // op's result per attempt; the last one repeats
		attempts  int     // MaxAttempts
		wantCalls int
		wantErr   error
		wantSleep int
		wantSlept []time.Duration // exact delays; nil: not checked
	}{
		{name: "succeeds at once", results: []error{nil}, wantCalls: 1},
		{name: "succeeds after failures", results: []error{errTransient, errTransient, nil}, wantCalls: 3, wantSleep: 2},
		{name: "permanent error stops", results: []error{errTransient, retry.Permanent(errBad)}, wantCalls: 2, wantErr: errBad, wantSleep: 1},
		{name: "attempts run out", results: []error{errTransient}, attempts: 4, wantCalls: 4, wantErr: errTransient, wantSleep: 3},
		{name: "a server's delay is honoured", results: []error{retry.After(errTransient, time.Hour), nil}, wantCalls: 2, wantSleep: 1, wantSlept: []time.Duration{time.Hour}},
		{name: "a marked last error comes back unmarked", results: []error{retry.After(errTransient, time.Hour)}, attempts: 2, wantCalls: 2, wantErr: errTransient, wantSleep: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &recordingClock{}
			p := retry.Policy{Initial: time.Second, Max: time.Minute, MaxAttempts: tt.attempts, Clock: clock}
			calls, notified := 0, 0
			err := p.Do(context.Background(), func(context.Context) error {
				calls++
				return tt.results[min(calls, len(tt.results))-1]
			}, func(attempt int, err error, d time.Duration) {
				notified++
				assert.Equal(t, notified, attempt)
				assert.ErrorIs(t, err, errTransient)
				assert.Equal(t, clock.slept, clock.slept[:attempt-1], "notified before sleeping")
				assert.Positive(t, d)
			})
			assert.Equal(t, tt.wantCalls, calls)
			assert.Len(t, clock.slept, tt.wantSleep)
			if tt.wantSlept != nil {
				assert.Equal(t, tt.wantSlept, clock.slept)
			}
			assert.Equal(t, tt.wantSleep, notified)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.wantErr.Error(), err.Error(), "a permanent error comes back unmarked")
		})
	}
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	errDown := errors.New("down")
	calls := 0
	err := retry.Policy{Initial: time.Hour, Max: time.Hour}.Do(ctx, func(context.Context) error {
		calls++
		cancel()
		return errDown
	}, nil)
	assert.Equal(t, 1, calls)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, errDown, "the last failure is reported too")
}

func TestRealClockSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, retry.RealClock{}.Sleep(ctx, time.Hour), context.Canceled)
	require.NoError(t, retry.RealClock{}.Sleep(context.Background(), time.Microsecond))
}

func TestBackoffResets(t *testing.T) {
	b := retry.NewBackoff(retry.Policy{Initial: time.Second, Max: time.Hour, Jitter: func(n int64) int64 { return n - 1 }})
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, []time.Duration{b.Next(), b.Next(), b.Next()})
	b.Reset()
	assert.Equal(t, time.Second, b.Next())
}

func TestMarksOfNil(t *testing.T) {
	assert.NoError(t, retry.Permanent(nil))
	assert.NoError(t, retry.After(nil, time.Second))
}

func TestClockFunc(t *testing.T) {
	var got time.Duration
	p := retry.Policy{Clock: retry.ClockFunc(func(_ context.Context, d time.Duration) error { got = d; return nil })}
	require.NoError(t, p.Sleep(context.Background(), time.Minute))
	assert.Equal(t, time.Minute, got)
}
