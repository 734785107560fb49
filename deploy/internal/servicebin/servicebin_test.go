package servicebin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseNames(t *testing.T) {
	body := []byte(`# HELP auditpipe_ready 1 while ready.
# TYPE auditpipe_ready gauge
auditpipe_ready 1
# TYPE auditpipe_loader_insert_duration_seconds histogram
auditpipe_loader_insert_duration_seconds_bucket{le="0.1"} 3
auditpipe_loader_insert_duration_seconds_sum 0.2
auditpipe_loader_insert_duration_seconds_count 3
auditpipe_dlq_records_total{reason="invalid_json",stage="enricher"} 0
`)
	names, err := parseNames(body)
	require.NoError(t, err)
	for _, n := range []string{"auditpipe_ready", "auditpipe_loader_insert_duration_seconds", "auditpipe_loader_insert_duration_seconds_bucket",
		"auditpipe_loader_insert_duration_seconds_sum", "auditpipe_loader_insert_duration_seconds_count", "auditpipe_dlq_records_total"} {
		assert.True(t, names[n], n)
	}
	assert.Len(t, names, 6)
	_, err = parseNames([]byte("# only comments\n"))
	assert.ErrorContains(t, err, "no metrics")
	_, err = parseNames([]byte("{broken} 1\n"))
	assert.ErrorContains(t, err, "malformed")
}
