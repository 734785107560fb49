package health

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	t0   = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rule = Rule{StallAfter: 3 * time.Minute, FailingAfter: 3}
	auth = Problem{Class: "auth", Summary: "auth (HTTP 401): an Admin API key is required", Permanent: true}
	srv  = Problem{Class: "server", Summary: "server (HTTP 503): the API keeps failing"}
	kfk  = Problem{Class: "kafka", Summary: "kafka: committing fails"}
)

// step is one report to a Source, at t0 + at.
type step struct {
	at time.Duration
	do func(s *Source, now time.Time)
}

func start(at time.Duration) step {
	return step{at, func(s *Source, now time.Time) { s.Start(now) }}
}
func progressed(at time.Duration) step {
	return step{at, func(s *Source, now time.Time) { s.Progressed(now) }}
}
func succeeded(at time.Duration) step {
	return step{at, func(s *Source, now time.Time) { s.Succeeded(now) }}
}
func failed(at time.Duration, p Problem) step {
	return step{at, func(s *Source, _ time.Time) { s.Failed(p) }}
}

func TestVerdict(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		at    time.Duration // when the verdict is asked
		want  State
		text  string
	}{
		{"just started", []step{start(0)}, time.Minute, OK, "ok"},
		{"started, nothing since", []step{start(0)}, 4 * time.Minute, Stalled, "no progress for 4m0s"},
		{"cycles keep completing", []step{start(0), succeeded(2 * time.Minute), succeeded(4 * time.Minute)}, 6 * time.Minute, OK, ""},
		{"a long backfill that commits slices", []step{start(0), progressed(2 * time.Minute), progressed(4 * time.Minute)}, 6 * time.Minute, OK, ""},
		{"one failure is not failing", []step{start(0), failed(time.Minute, srv)}, 2 * time.Minute, OK, ""},
		{"three failures in a row", []step{start(0), failed(time.Minute, srv), failed(90*time.Second, srv), failed(2*time.Minute, kfk)}, 2 * time.Minute, Failing, "failing (3 in a row): kafka: committing fails"},
		{"a success clears the failures", []step{start(0), failed(10*time.Second, srv), failed(20*time.Second, srv), succeeded(30 * time.Second), failed(40*time.Second, srv)}, time.Minute, OK, ""},
		{"a commit alone does not clear them", []step{start(0), failed(10*time.Second, srv), failed(20*time.Second, srv), progressed(25 * time.Second), failed(30*time.Second, srv)}, time.Minute, Failing, "failing (3 in a row)"},
		{"a refused key fails at once", []step{start(0), failed(time.Second, auth)}, 2 * time.Second, Failing, "an Admin API key is required"},
		{"failing wins over stalled", []step{start(0), failed(time.Second, auth)}, time.Hour, Failing, "failing"},
		{"stalled says the last failure", []step{start(0), failed(time.Second, srv)}, 5 * time.Minute, Stalled, "last failure: server (HTTP 503)"},
		{"a restart of the session is not a start", []step{start(0), failed(time.Minute, kfk), failed(2*time.Minute, kfk)}, 4 * time.Minute, Stalled, "stalled"},
		{"a new ownership is a start", []step{start(0), failed(time.Minute, kfk), failed(2*time.Minute, kfk), start(3 * time.Minute)}, 4 * time.Minute, OK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSource(rule)
			for _, st := range tc.steps {
				st.do(s, t0.Add(st.at))
			}
			v := s.Verdict(t0.Add(tc.at))
			assert.Equal(t, tc.want, v.State)
			assert.Contains(t, v.String(), tc.text)
		})
	}
}

func TestReadinessIsBoundedAndOrdered(t *testing.T) {
	sources := map[string]*Source{}
	for i := range 5000 {
		s := NewSource(rule)
		s.Start(t0)
		switch {
		case i%3 == 0:
			s.Failed(auth)
		case i%3 == 1:
			s.Succeeded(t0.Add(9 * time.Minute))
		}
		sources[fmt.Sprintf("org-%04d", i)] = s
	}
	now := t0.Add(10 * time.Minute)
	err := Readiness(now, sources)
	require.Error(t, err)
	msg := err.Error()
	assert.Less(t, len(msg), 2048, "bounded whatever the number of sources")
	assert.True(t, strings.HasPrefix(msg, "3333 of 5000 sources are not making progress: source org-0000: failing"), msg)
	assert.Contains(t, msg, "source org-0002: stalled")
	assert.NotContains(t, msg, "org-0001", "healthy sources are not listed")
	assert.Contains(t, msg, "and 3328 more")
	assert.Equal(t, map[State]int{Failing: 1667, Stalled: 1666}, Count(now, sources))

	for _, s := range sources {
		s.Succeeded(now)
	}
	assert.NoError(t, Readiness(now, sources))
	assert.NoError(t, Readiness(now, nil))
}
