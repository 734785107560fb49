package kafkatest_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
)

// avroRecord is an Avro record E with the given fields (JSON objects).
func avroRecord(fields ...string) sr.Schema {
	return sr.Schema{Type: sr.TypeAvro, Schema: `{"type":"record","name":"E","namespace":"t","fields":[` + strings.Join(fields, ",") + `]}`}
}

const (
	aRequired = `{"name":"a","type":"string"}`
	bOptional = `{"name":"b","type":"string","default":""}`
	cOptional = `{"name":"c","type":"string","default":""}`
	cRequired = `{"name":"c","type":"string"}`
	aLong     = `{"name":"a","type":"long"}`
)

// registerUnder registers schemas in order under subject at level (set on
// the subject first) and returns the error of the last registration.
func registerUnder(t *testing.T, cl *sr.Client, subject string, level sr.CompatibilityLevel, schemas ...sr.Schema) error {
	t.Helper()
	res := cl.SetCompatibility(ctx(t), sr.SetCompatibility{Level: level}, subject)
	require.NoError(t, res[0].Err)
	var err error
	for i, s := range schemas {
		_, err = cl.CreateSchema(ctx(t), subject, s)
		if i < len(schemas)-1 {
			require.NoError(t, err, "registering version %d", i+1)
		}
	}
	return err
}

// TestEnforceCompatibilityLevels checks the summary table of Confluent's
// "Schema Evolution and Compatibility" documentation, change by change and
// level by level, against the latest version: BACKWARD allows deleting
// fields and adding optional ones; FORWARD adding fields and deleting
// optional ones; FULL adding and deleting optional ones; NONE anything.
func TestEnforceCompatibilityLevels(t *testing.T) {
	base := avroRecord(aRequired, bOptional)
	changes := []struct {
		name string
		next sr.Schema
		ok   map[sr.CompatibilityLevel]bool
	}{
		{"add an optional field", avroRecord(aRequired, bOptional, cOptional),
			map[sr.CompatibilityLevel]bool{sr.CompatNone: true, sr.CompatBackward: true, sr.CompatForward: true, sr.CompatFull: true}},
		{"add a required field", avroRecord(aRequired, bOptional, cRequired),
			map[sr.CompatibilityLevel]bool{sr.CompatNone: true, sr.CompatForward: true}},
		{"delete an optional field", avroRecord(aRequired),
			map[sr.CompatibilityLevel]bool{sr.CompatNone: true, sr.CompatBackward: true, sr.CompatForward: true, sr.CompatFull: true}},
		{"delete a required field", avroRecord(bOptional),
			map[sr.CompatibilityLevel]bool{sr.CompatNone: true, sr.CompatBackward: true}},
		{"change a field's type", avroRecord(aLong, bOptional),
			map[sr.CompatibilityLevel]bool{sr.CompatNone: true}},
	}
	for _, ch := range changes {
		for _, level := range []sr.CompatibilityLevel{sr.CompatNone, sr.CompatBackward, sr.CompatForward, sr.CompatFull} {
			t.Run(fmt.Sprintf("%s/%s", ch.name, level), func(t *testing.T) {
				cl := kafkatest.NewFakeSchemaRegistry(t).Client(t)
				err := registerUnder(t, cl, "s-value", level, base, ch.next)
				check, cerr := cl.CheckCompatibility(ctx(t), "s-value", -1, ch.next)
				require.NoError(t, cerr)
				if ch.ok[level] {
					require.NoError(t, err)
					return
				}
				var re *sr.ResponseError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, http.StatusConflict, re.StatusCode)
				assert.Equal(t, kafkatest.CodeIncompatibleSchema, re.ErrorCode)
				assert.Contains(t, re.Message, `Schema being registered is incompatible with an earlier schema for subject "s-value"`)
				assert.Contains(t, re.Message, "compatibility: "+level.String())
				assert.False(t, check.Is, "the compatibility endpoint agrees with the registration")
				versions, verr := cl.SubjectVersions(ctx(t), "s-value")
				require.NoError(t, verr)
				assert.Equal(t, []int{1}, versions, "nothing was registered")
			})
		}
	}
}

// TestEnforceCompatibilityTransitive: the plain levels check the latest
// version only, the _TRANSITIVE ones every version.
func TestEnforceCompatibilityTransitive(t *testing.T) {
	xString := `{"name":"x","type":"string","default":""}`
	xLong := `{"name":"x","type":"long","default":0}`
	y := `{"name":"y","type":"string","default":""}`
	// v2 drops x (allowed everywhere: it has a default); v3 brings x back
	// as a long: compatible with v2, not with v1.
	history := []sr.Schema{avroRecord(xString, y), avroRecord(y), avroRecord(xLong, y)}
	for _, tc := range []struct {
		level sr.CompatibilityLevel
		ok    bool
	}{
		{sr.CompatBackward, true}, {sr.CompatBackwardTransitive, false},
		{sr.CompatForward, true}, {sr.CompatForwardTransitive, false},
		{sr.CompatFull, true}, {sr.CompatFullTransitive, false},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			cl := kafkatest.NewFakeSchemaRegistry(t).Client(t)
			err := registerUnder(t, cl, "s-value", tc.level, history...)
			all, cerr := cl.CheckCompatibility(sr.WithParams(ctx(t), sr.Verbose), "s-value", -2, history[2])
			require.NoError(t, cerr)
			assert.Equal(t, tc.ok, all.Is)
			if tc.ok {
				require.NoError(t, err)
				assert.Empty(t, all.Messages)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "version 1")
			assert.NotContains(t, err.Error(), "version 2", "v3 is compatible with v2")
			require.NotEmpty(t, all.Messages)
			// Against v2 alone it is compatible.
			v2, cerr := cl.CheckCompatibility(ctx(t), "s-value", 2, history[2])
			require.NoError(t, cerr)
			assert.True(t, v2.Is)
		})
	}
}

func TestEnforceCompatibilitySubjectOverridesGlobal(t *testing.T) {
	cl := kafkatest.NewFakeSchemaRegistry(t).Client(t)
	require.NoError(t, cl.SetCompatibility(ctx(t), sr.SetCompatibility{Level: sr.CompatNone})[0].Err)
	_, err := cl.CreateSchema(ctx(t), "s-value", avroRecord(aRequired))
	require.NoError(t, err)
	// Global NONE: anything goes.
	_, err = cl.CreateSchema(ctx(t), "s-value", avroRecord(aLong))
	require.NoError(t, err)
	// The subject's own level wins over the global one.
	require.NoError(t, cl.SetCompatibility(ctx(t), sr.SetCompatibility{Level: sr.CompatBackward}, "s-value")[0].Err)
	_, err = cl.CreateSchema(ctx(t), "s-value", avroRecord(aLong, cRequired))
	var re *sr.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusConflict, re.StatusCode)
	assert.Contains(t, re.Message, "reader field c is missing in writer schema and has no default")
	// Another subject still follows the global level.
	_, err = cl.CreateSchema(ctx(t), "t-value", avroRecord(aRequired))
	require.NoError(t, err)
	_, err = cl.CreateSchema(ctx(t), "t-value", avroRecord(aLong))
	require.NoError(t, err)
}

func TestEnforceCompatibilityReturnsExistingSchemasUnchecked(t *testing.T) {
	cl := kafkatest.NewFakeSchemaRegistry(t).Client(t)
	require.NoError(t, registerUnder(t, cl, "s-value", sr.CompatNone, avroRecord(aRequired), avroRecord(aLong)))
	require.NoError(t, cl.SetCompatibility(ctx(t), sr.SetCompatibility{Level: sr.CompatBackward}, "s-value")[0].Err)
	// v1 could not be registered after v2 under BACKWARD, but it is already
	// there: its id comes back, as from Confluent's registry.
	got, err := cl.CreateSchema(ctx(t), "s-value", avroRecord(aRequired))
	require.NoError(t, err)
	assert.Equal(t, 1, got.Version)
}

func TestEnforceCompatibilityInvalidSchema(t *testing.T) {
	cl := kafkatest.NewFakeSchemaRegistry(t).Client(t)
	for _, s := range []string{`{"type":"record","name":"E","fields":[{"name":"a","type":"nosuchtype"}]}`, `not json`} {
		_, err := cl.CreateSchema(ctx(t), "s-value", sr.Schema{Type: sr.TypeAvro, Schema: s})
		var re *sr.ResponseError
		require.True(t, errors.As(err, &re), "%v", err)
		assert.Equal(t, http.StatusUnprocessableEntity, re.StatusCode)
		assert.Equal(t, kafkatest.CodeInvalidSchema, re.ErrorCode)
		assert.Contains(t, re.Message, "Invalid schema")
	}
}

func TestEnforceCompatibilityFirstVersionAndUnknownSubject(t *testing.T) {
	cl := kafkatest.NewFakeSchemaRegistry(t).Client(t)
	// Against a subject without versions everything is compatible.
	res, err := cl.CheckCompatibility(ctx(t), "new-value", -2, avroRecord(aRequired))
	require.NoError(t, err)
	assert.True(t, res.Is)
	// A specific version of an unknown subject is not found (40401).
	_, err = cl.CheckCompatibility(ctx(t), "new-value", 1, avroRecord(aRequired))
	var re *sr.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusNotFound, re.StatusCode)
	ss, err := cl.CreateSchema(ctx(t), "new-value", avroRecord(aRequired))
	require.NoError(t, err)
	assert.Equal(t, 1, ss.Version)
}
