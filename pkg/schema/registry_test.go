package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

func TestRegistryProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    schema.SchemaRegistry
		want []string
	}{
		{"valid", schema.SchemaRegistry{URLs: []string{"http://a:8081", "https://b"}, Timeout: time.Second}, nil},
		{"nothing", schema.SchemaRegistry{}, []string{"urls: at least one is required", "timeout: must be positive"}},
		{"bad urls", schema.SchemaRegistry{URLs: []string{"a:8081", "ftp://x", "http://"}, Timeout: time.Second},
			[]string{`urls[0]: "a:8081"`, `urls[1]: "ftp://x"`, `urls[2]: "http://"`}},
		{"password without user", schema.SchemaRegistry{URLs: []string{"http://a"}, Timeout: time.Second, Password: config.NewSecret("p")},
			[]string{"username: required with a password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.r.Problems()
			require.Len(t, errs, len(tc.want), "%v", errs)
			for i, w := range tc.want {
				assert.Contains(t, errs[i].Error(), w)
			}
		})
	}
}

func TestRegistryClientReachesRegistry(t *testing.T) {
	reg := kafkatest.NewFakeSchemaRegistry(t)
	cl, err := schema.SchemaRegistry{URLs: []string{reg.URL()}, Timeout: 5 * time.Second}.Client("auditpipe-test")
	require.NoError(t, err)
	_, id, err := schema.NewSerde(context.Background(), cl, contract.SubjectEnriched, true)
	require.NoError(t, err)
	assert.Positive(t, id)
}
