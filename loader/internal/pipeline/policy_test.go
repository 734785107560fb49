package pipeline_test

import (
	"time"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
)

func newPolicy(rows int, age time.Duration) batch.Policy {
	return batch.Policy{MaxRows: rows, MaxBytes: 64 << 20, MaxAge: age, BoundaryWait: 5 * time.Second}
}
