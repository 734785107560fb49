package openaisim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"
)

// FaultKind names a failure the endpoint can be told to produce.
type FaultKind string

const (
	// FaultRateLimit answers 429 with the API's rate-limit error; with
	// Fault.RetryAfter > 0 it sets Retry-After (whole seconds, at least 1).
	FaultRateLimit FaultKind = "rate_limit"
	// FaultServerError answers Fault.Status (500, 502 or 503; default 500)
	// with an error body.
	FaultServerError FaultKind = "server_error"
	// FaultSlow answers normally after Fault.Delay.
	FaultSlow FaultKind = "slow"
	// FaultTimeout never answers: the handler holds the request until the
	// client gives up, Fault.Delay passes (if set; then the connection is
	// dropped), or the simulator closes.
	FaultTimeout FaultKind = "timeout"
	// FaultTruncated sends the first half of the normal 200 body. By default
	// the response is complete but its JSON is cut; with Fault.Abort the
	// server announces the full Content-Length and drops the connection
	// mid-body.
	FaultTruncated FaultKind = "truncated"
	// FaultConcatenated sends Fault.Documents (default 2) copies of the
	// normal body separated by newlines, as seen in production.
	FaultConcatenated FaultKind = "concatenated"
	// FaultInvalidCursor answers 400 as if the request's cursor were invalid.
	FaultInvalidCursor FaultKind = "invalid_cursor"
)

// Fault is a scripted failure of GET /v1/organization/audit_logs. Faults
// apply after authentication, to requests matching Match, in the order they
// were scheduled; each request gets at most one fault. Its JSON form (control
// API) writes durations as strings such as "2s".
type Fault struct {
	Kind FaultKind
	// Status is the HTTP status of FaultServerError (500, 502, 503).
	Status int
	// RetryAfter is the Retry-After of FaultRateLimit; 0 omits the header.
	RetryAfter time.Duration
	// Delay is how long FaultSlow waits, and the longest FaultTimeout holds
	// a request (0: until the client or the simulator gives up).
	Delay time.Duration
	// Documents is the number of JSON documents FaultConcatenated sends.
	Documents int
	// Abort makes FaultTruncated drop the connection mid-body.
	Abort bool
	// Count is how many requests the fault hits: 0 means 1, negative means
	// without limit.
	Count int
	// Match restricts which requests the fault hits.
	Match Match
}

// Match selects requests by their 1-based number among authenticated
// audit-log requests and by their parameters. Zero fields match anything.
type Match struct {
	// Request hits only the request with this number.
	Request int `json:"request,omitempty"`
	// Every hits only requests whose number is a multiple of Every.
	Every int `json:"every,omitempty"`
	// Param hits only requests carrying this query parameter, e.g. "after"
	// (the spelling with or without "[]" both match an array parameter).
	Param string `json:"param,omitempty"`
	// Probability hits a matching request with this probability, drawn from
	// a source seeded by Config.Seed (0 means always).
	Probability float64 `json:"probability,omitempty"`
}

func (f *Fault) validate() error {
	var errs []error
	switch f.Kind {
	case FaultRateLimit, FaultSlow, FaultTimeout, FaultTruncated, FaultConcatenated, FaultInvalidCursor:
	case FaultServerError:
		switch f.Status {
		case 0:
			f.Status = 500
		case 500, 502, 503, 504:
		default:
			errs = append(errs, fmt.Errorf("status %d is not a server error status (500, 502, 503, 504)", f.Status))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown kind %q", f.Kind))
	}
	if f.RetryAfter < 0 || f.Delay < 0 || f.Documents < 0 || f.Match.Request < 0 || f.Match.Every < 0 {
		errs = append(errs, errors.New("durations, documents, request and every must not be negative"))
	}
	if f.Match.Probability < 0 || f.Match.Probability > 1 {
		errs = append(errs, errors.New("probability must be within [0, 1]"))
	}
	if f.Kind == FaultConcatenated && f.Documents == 0 {
		f.Documents = 2
	}
	if f.Count == 0 {
		f.Count = 1
	}
	return errors.Join(errs...)
}

func (m Match) matches(n int, q url.Values, r *rand.Rand) bool {
	if m.Request > 0 && n != m.Request {
		return false
	}
	if m.Every > 0 && n%m.Every != 0 {
		return false
	}
	if m.Param != "" && !q.Has(m.Param) && !q.Has(m.Param+"[]") {
		return false
	}
	if m.Probability > 0 && r.Float64() >= m.Probability {
		return false
	}
	return true
}

// faultQueue holds scheduled faults. It is safe for concurrent use.
type faultQueue struct {
	mu     sync.Mutex
	r      *rand.Rand
	faults []*Fault
}

func (q *faultQueue) add(f Fault) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faults = append(q.faults, &f)
}

// take returns the fault for request number n, consuming one of its uses.
func (q *faultQueue) take(n int, query url.Values) (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, f := range q.faults {
		if !f.Match.matches(n, query, q.r) {
			continue
		}
		out := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				q.faults = append(q.faults[:i], q.faults[i+1:]...)
			}
		}
		return out, true
	}
	return Fault{}, false
}

func (q *faultQueue) list() []Fault {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Fault, 0, len(q.faults))
	for _, f := range q.faults {
		out = append(out, *f)
	}
	return out
}

func (q *faultQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.faults = nil
}
