package avroenc

import (
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// TestWireSchemaReplacesEveryMap checks that head, middle and tail hold
// the contract schema's fields, in order, with every map<string> (and
// only those) as an array of {key, value} records.
func TestWireSchemaReplacesEveryMap(t *testing.T) {
	contract, err := schema.ParseAvro()
	require.NoError(t, err)
	ws, err := splitSchema()
	require.NoError(t, err)
	var wireFields []*avro.Field
	for _, part := range []avro.Schema{ws.head, ws.middle, ws.tail} {
		wireFields = append(wireFields, part.(*avro.RecordSchema).Fields()...)
	}
	maps := 0
	var compare func(path string, c, w avro.Schema)
	compare = func(path string, c, w avro.Schema) {
		switch ct := c.(type) {
		case *avro.MapSchema:
			maps++
			arr, ok := w.(*avro.ArraySchema)
			require.True(t, ok, "%s: a map becomes an array", path)
			entry, ok := arr.Items().(*avro.RecordSchema)
			require.True(t, ok, path)
			require.Len(t, entry.Fields(), 2, path)
			assert.Equal(t, []string{"key", "value"}, []string{entry.Fields()[0].Name(), entry.Fields()[1].Name()}, path)
			compare(path+".value", ct.Values(), entry.Fields()[1].Type())
		case *avro.RecordSchema:
			wt, ok := w.(*avro.RecordSchema)
			require.True(t, ok, path)
			compareFields(t, path, ct.Fields(), wt.Fields(), compare)
		case *avro.ArraySchema:
			wt, ok := w.(*avro.ArraySchema)
			require.True(t, ok, path)
			compare(path+"[]", ct.Items(), wt.Items())
		default:
			assert.Equal(t, c.Type(), w.Type(), path)
		}
	}
	compareFields(t, "", contract.(*avro.RecordSchema).Fields(), wireFields, compare)
	assert.Equal(t, 3, maps, "actor, tags and enrichments.data: a new map field needs its entries in wireMiddle")
}

func compareFields(t *testing.T, path string, c, w []*avro.Field, compare func(string, avro.Schema, avro.Schema)) {
	t.Helper()
	require.Len(t, w, len(c), path)
	for i, f := range c {
		require.Equal(t, f.Name(), w[i].Name(), path)
		compare(path+"."+f.Name(), f.Type(), w[i].Type())
	}
}
