package avroenc

import (
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// TestWireSchemaReplacesEveryMap checks that the wire schema has the
// contract schema's fields, in order, with every map<string> (and only
// those) as an array of {key, value} records.
func TestWireSchemaReplacesEveryMap(t *testing.T) {
	contract, err := schema.ParseAvro()
	require.NoError(t, err)
	wire, err := wireSchema()
	require.NoError(t, err)
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
			require.Len(t, wt.Fields(), len(ct.Fields()), path)
			for i, f := range ct.Fields() {
				require.Equal(t, f.Name(), wt.Fields()[i].Name(), path)
				compare(path+"."+f.Name(), f.Type(), wt.Fields()[i].Type())
			}
		case *avro.ArraySchema:
			wt, ok := w.(*avro.ArraySchema)
			require.True(t, ok, path)
			compare(path+"[]", ct.Items(), wt.Items())
		default:
			assert.Equal(t, c.Type(), w.Type(), path)
		}
	}
	compare("", contract, wire)
	assert.Equal(t, 3, maps, "actor, tags and enrichments.data: a new map field needs its entries in wireLog")
}
