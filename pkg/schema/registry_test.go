package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"

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

// TestNewSerdeAgainstEnforcingRegistry runs NewSerde, registering and
// looking up, against a registry that enforces compatibility.
func TestNewSerdeAgainstEnforcingRegistry(t *testing.T) {
	ctx := context.Background()
	subject := contract.SubjectEnriched
	for _, tc := range []struct {
		name string
		// prepare puts the subject in the state under test; it may
		// register the embedded schema first.
		prepare  func(t *testing.T, cl *sr.Client)
		register bool
		want     []string // substrings of the error; none: success
	}{
		{"newer version that reads ours (a rollback over a compatible change)", func(t *testing.T, cl *sr.Client) {
			_, err := cl.CreateSchema(ctx, subject, schema.RegistrySchema())
			require.NoError(t, err)
			_, err = cl.CreateSchema(ctx, subject, sr.Schema{Type: sr.TypeAvro, Schema: evolved(t, nil, map[string]any{"name": "userAgent", "type": "string", "default": ""})})
			require.NoError(t, err)
		}, true, nil},
		{"newer version that cannot read ours, registering", newerIncompatible, true, []string{
			`subject "openai-audit-enriched-value" holds version 2`, "newer than this release's schema v1 (version 1",
			"cannot read records written with v1: reader field extra is missing in writer schema and has no default",
			"deploy the release that registered version 2",
		}},
		{"newer version that cannot read ours, looking up", newerIncompatible, false, []string{
			"holds version 2", "cannot read records written with v1",
		}},
		{"registration refused (409)", func(t *testing.T, cl *sr.Client) {
			// The subject holds a record ours cannot read (workspaceID a
			// long), registered by someone else.
			_, err := cl.CreateSchema(ctx, subject, sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"AuditLog","namespace":"io.auditpipe.openai","fields":[{"name":"workspaceID","type":"long"}]}`})
			require.NoError(t, err)
		}, true, []string{
			`the registry refused to register schema v1 under subject "openai-audit-enriched-value" as incompatible`,
			"Schema being registered is incompatible with an earlier schema", "reader schema string not compatible with writer schema long",
			"do not lower the subject's compatibility level",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := kafkatest.NewFakeSchemaRegistry(t)
			cl := reg.Client(t)
			tc.prepare(t, cl)
			_, id, err := schema.NewSerde(ctx, cl, subject, tc.register)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				ss, lerr := cl.LookupSchema(ctx, subject, schema.RegistrySchema())
				require.NoError(t, lerr)
				assert.Equal(t, ss.ID, id, "the id of the embedded schema, not the newest")
				return
			}
			require.ErrorIs(t, err, schema.ErrSchemaRejected)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// newerIncompatible registers the embedded schema, then (under NONE, as
// another release with a breaking change would have to) a version that
// cannot read it, and sets BACKWARD again.
func newerIncompatible(t *testing.T, cl *sr.Client) {
	ctx := context.Background()
	_, err := cl.CreateSchema(ctx, contract.SubjectEnriched, schema.RegistrySchema())
	require.NoError(t, err)
	require.NoError(t, cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, contract.SubjectEnriched)[0].Err)
	_, err = cl.CreateSchema(ctx, contract.SubjectEnriched, sr.Schema{Type: sr.TypeAvro, Schema: evolved(t, nil, map[string]any{"name": "extra", "type": "string"})})
	require.NoError(t, err)
	require.NoError(t, cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, contract.SubjectEnriched)[0].Err)
}
