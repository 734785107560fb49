package collect

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditpipe/auditpipe/poller/internal/health"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// ClassPagination is the error class of an upstream whose pagination does
// not end: a cursor that repeats or cycles, or a slice past its bounds.
const ClassPagination = "pagination"

// PaginationError is a slice whose pages do not end. Every text in it that
// came from the upstream (the cursor) is scrubbed and cut.
type PaginationError struct {
	Stream string
	// GTE and LT are the slice's bounds (LT 0: open-ended).
	GTE, LT int64
	// Pages and Events are what the slice had fetched.
	Pages, Events int
	// Cursor is the last after cursor asked for ("" on the first page).
	Cursor string
	// What says what the upstream did.
	What string
}

func (e *PaginationError) Error() string {
	upper := "now"
	if e.LT != 0 {
		upper = time.Unix(e.LT, 0).UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s: stream %s, slice [%s, %s), after %d pages and %d events, cursor %q: %s",
		ClassPagination, e.Stream, time.Unix(e.GTE, 0).UTC().Format(time.RFC3339), upper, e.Pages, e.Events, e.Cursor, e.What)
}

// Summary is the form of the error without upstream text.
func (e *PaginationError) Summary() string {
	return ClassPagination + ": the API's pages do not end (a cursor repeats or cycles, or a slice exceeds collection.max_slice_events or its pages): nothing of that slice is published; the poller's log names the cursor"
}

// ProblemOf returns what the health of a source keeps of err, a failure of
// its cycle or session: the class, and a summary free of upstream text.
func ProblemOf(err error) health.Problem {
	if e, ok := errors.AsType[*upstream.Error](err); ok {
		return health.Problem{Class: string(e.Class), Summary: e.Summary(), Permanent: e.Permanent()}
	}
	if e, ok := errors.AsType[*PaginationError](err); ok {
		return health.Problem{Class: ClassPagination, Summary: e.Summary()}
	}
	if errors.Is(err, ErrKafka) {
		return health.Problem{Class: ClassKafka, Summary: ClassKafka + ": a transaction failed; the source restarts from its committed state (the poller's log has the cause)"}
	}
	return health.Problem{Class: ClassSession, Summary: ClassSession + ": the source's session failed (the poller's log has the cause)"}
}
