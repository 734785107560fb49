// Package retry is the one retry policy of auditpipe: exponential backoff
// with full jitter, bounded, context-aware, on an injectable clock.
//
// Every service retries transient failures with it: the poller's API
// requests and source restarts, the enricher's startup (schema
// registration, topic creation), the loader's startup (migrations) and
// its flushes.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Clock waits between attempts. Tests inject one that records the delays
// instead of sleeping.
type Clock interface {
	// Sleep blocks for d or until ctx is done, and then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

// ClockFunc is a Clock made of a function.
type ClockFunc func(ctx context.Context, d time.Duration) error

// Sleep implements Clock.
func (f ClockFunc) Sleep(ctx context.Context, d time.Duration) error { return f(ctx, d) }

// RealClock sleeps on a timer.
type RealClock struct{}

// Sleep implements Clock.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Policy is exponential backoff with full jitter. The delay after the n-th
// failed attempt is drawn uniformly between Initial/2 and the cap
// min(Max, Initial·2^(n-1)): the whole range (full jitter), so that
// replicas failing together spread out, but never below Initial/2, so that
// a retry is never immediate. The zero Policy does not wait. A Policy is
// a value; it is safe for concurrent use when its Clock and Jitter are.
type Policy struct {
	// Initial is the cap of the first delay; each later attempt doubles
	// the cap.
	Initial time.Duration
	// Max bounds every delay (values below Initial count as Initial).
	Max time.Duration
	// MaxAttempts bounds the attempts of Do (0: no bound; Do then ends
	// only on success, a permanent error or the context).
	MaxAttempts int
	// Clock waits between the attempts of Do and in Wait (nil: RealClock).
	Clock Clock
	// Jitter returns a uniform number in [0, n) (nil: math/rand/v2).
	Jitter func(n int64) int64
}

// Delay returns the wait after the attempt-th failed attempt (1-based).
func (p Policy) Delay(attempt int) time.Duration {
	if p.Initial <= 0 {
		return 0
	}
	hi := max(p.Max, p.Initial)
	ceil := p.Initial
	for i := 1; i < attempt && ceil < hi; i++ {
		if ceil > hi/2 {
			ceil = hi
			break
		}
		ceil *= 2
	}
	lo := p.Initial / 2
	jitter := p.Jitter
	if jitter == nil {
		jitter = rand.Int64N //nolint:gosec // jitter needs no cryptographic randomness
	}
	return lo + time.Duration(jitter(int64(ceil-lo)+1))
}

// Sleep waits d on the policy's clock, or until ctx is done (returning
// ctx.Err()).
func (p Policy) Sleep(ctx context.Context, d time.Duration) error {
	if p.Clock == nil {
		return RealClock{}.Sleep(ctx, d)
	}
	return p.Clock.Sleep(ctx, d)
}

// Notify is told about each failed attempt that will be retried, and the
// delay before the next one.
type Notify func(attempt int, err error, delay time.Duration)

// Do calls op until it returns nil, an error marked Permanent, MaxAttempts
// attempts have failed, or ctx is done, waiting Delay between attempts (or
// the delay an error marked with After asks for). It returns nil, the
// permanent error, the last error, or ctx's error joined with the last
// one, always without the marks. notify may be nil.
func (p Policy) Do(ctx context.Context, op func(context.Context) error, notify Notify) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if pe, ok := errors.AsType[*permanent](err); ok {
			return pe.err
		}
		d := p.Delay(attempt)
		if ae, ok := errors.AsType[*after](err); ok {
			err, d = ae.err, ae.d
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
			return err
		}
		if notify != nil {
			notify(attempt, err, d)
		}
		if serr := p.Sleep(ctx, d); serr != nil {
			return errors.Join(serr, err)
		}
	}
}

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: Do returns it at once
// (without the mark). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err: err}
}

type after struct {
	err error
	d   time.Duration
}

func (a *after) Error() string { return a.err.Error() }
func (a *after) Unwrap() error { return a.err }

// After marks err as retryable after d instead of the policy's delay (a
// server's Retry-After, say). After(nil, d) is nil.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &after{err: err, d: d}
}

// Backoff walks a Policy's delays for a loop that keeps its own attempt
// count (restarts that reset after progress, say). It is not safe for
// concurrent use.
type Backoff struct {
	p       Policy
	attempt int
}

// NewBackoff returns a Backoff at its first delay.
func NewBackoff(p Policy) *Backoff { return &Backoff{p: p} }

// Next returns the delay after one more failure.
func (b *Backoff) Next() time.Duration {
	b.attempt++
	return b.p.Delay(b.attempt)
}

// Reset starts again from the first delay.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits d on the policy's clock, or until ctx is done (returning
// ctx.Err()).
func (b *Backoff) Sleep(ctx context.Context, d time.Duration) error { return b.p.Sleep(ctx, d) }
