package health

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Problem is why a source failed, in words fit to serve: a class (the
// error class of the metrics) and a summary that holds our own text only,
// never text an upstream sent.
type Problem struct {
	Class   string
	Summary string
	// Permanent says that retrying cannot help until the operator acts
	// (a refused key, a redirect): the source is failing at once.
	Permanent bool
}

// Rule is when a source stops counting as healthy.
type Rule struct {
	// StallAfter: a source without progress (a committed slice or a
	// completed poll cycle) for longer is stalled.
	StallAfter time.Duration
	// FailingAfter: a source whose last FailingAfter cycles or sessions
	// all failed is failing.
	FailingAfter int
}

// State is a source's health.
type State string

// States.
const (
	OK      State = "ok"
	Failing State = "failing"
	Stalled State = "stalled"
)

// Verdict is a source's health at one moment.
type Verdict struct {
	State State
	// Failures is how many cycles or sessions failed in a row; Last the
	// latest failure (zero without one).
	Failures int
	Last     Problem
	// Quiet is how long the source has gone without progress.
	Quiet time.Duration
}

// String says what is wrong, for the readiness body.
func (v Verdict) String() string {
	switch v.State {
	case Failing:
		return fmt.Sprintf("failing (%d in a row): %s", v.Failures, v.Last.Summary)
	case Stalled:
		s := fmt.Sprintf("stalled: no progress for %s", v.Quiet.Round(time.Second))
		if v.Failures > 0 {
			s += "; last failure: " + v.Last.Summary
		}
		return s
	}
	return string(OK)
}

// Source tracks one source's progress. It is safe for concurrent use (see
// the package doc for who writes it).
type Source struct {
	rule Rule

	mu       sync.Mutex
	progress time.Time // the last progress, or when the source was started
	failures int
	last     Problem
}

// NewSource returns the tracker of a source that has not started.
func NewSource(rule Rule) *Source { return &Source{rule: rule} }

// Start records that this replica owns the source from now on: the stall
// clock starts and earlier failures are forgotten. A session restart is not
// a start (a source that restarts in a loop must be seen).
func (s *Source) Start(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress, s.failures, s.last = now, 0, Problem{}
}

// Progressed records a committed slice.
func (s *Source) Progressed(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress = now
}

// Succeeded records a poll cycle that completed: every stream committed
// or verified that nothing was new.
func (s *Source) Succeeded(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress, s.failures, s.last = now, 0, Problem{}
}

// Failed records a failed poll cycle or session.
func (s *Source) Failed(p Problem) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.last = p
}

// Verdict returns the source's health at now.
func (s *Source) Verdict(now time.Time) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := Verdict{State: OK, Failures: s.failures, Last: s.last, Quiet: now.Sub(s.progress)}
	switch {
	case s.failures > 0 && (s.last.Permanent || s.failures >= s.rule.FailingAfter):
		v.State = Failing
	case v.Quiet > s.rule.StallAfter:
		v.State = Stalled
	}
	return v
}

// MaxListed bounds the sources Readiness names; the rest are counted.
const MaxListed = 5

// Readiness returns nil when every source in sources (by id) is OK at now,
// else an error naming at most MaxListed of the others (in id order) with
// their verdicts, and counting the rest: its size does not grow with the
// number of sources.
func Readiness(now time.Time, sources map[string]*Source) error {
	type bad struct {
		id string
		v  Verdict
	}
	var all []bad
	for id, s := range sources {
		if v := s.Verdict(now); v.State != OK {
			all = append(all, bad{id, v})
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b bad) int { return cmp.Compare(a.id, b.id) })
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d sources are not making progress: ", len(all), len(sources))
	for i, s := range all[:min(len(all), MaxListed)] {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "source %s: %s", s.id, s.v)
	}
	if n := len(all) - MaxListed; n > 0 {
		fmt.Fprintf(&b, "; and %d more (auditpipe_poller_sources_unhealthy counts them, the log names them)", n)
	}
	return errors.New(b.String())
}

// Count returns how many of sources are failing and stalled at now.
func Count(now time.Time, sources map[string]*Source) map[State]int {
	out := map[State]int{Failing: 0, Stalled: 0}
	for _, s := range sources {
		if v := s.Verdict(now); v.State != OK {
			out[v.State]++
		}
	}
	return out
}
