package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// FuzzDecode feeds arbitrary bytes to the wire-format decoder (5-byte
// header + Avro body). It must never panic, and with a reachable registry
// every failure is one of the permanent classes a consumer dead-letters.
func FuzzDecode(f *testing.F) {
	ctx := context.Background()
	_, cl := newRegistry(f)
	serde, id, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
	require.NoError(f, err)
	dec, err := schema.NewDecoder(cl, 0)
	require.NoError(f, err)

	good, err := serde.Encode(sample())
	require.NoError(f, err)
	empty, err := serde.Encode(schema.AuditLog{ReceivedAt: sample().ReceivedAt, EventTime: sample().EventTime})
	require.NoError(f, err)
	f.Add(good)
	f.Add(empty)
	f.Add(good[:5])
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, byte(id)})
	f.Add([]byte{0, 0, 0, 0, byte(id), 0xff, 0xff, 0xff, 0xff, 0x0f})                            // huge string length
	f.Add(append([]byte{0, 0, 0, 0, byte(id)}, strings.Repeat("\x01", 64)...))                   // negative lengths
	f.Add(append(append([]byte{}, good[:5]...), append(make([]byte, 100), 0xfe, 0xff, 0x7f)...)) // huge array count

	f.Fuzz(func(t *testing.T, b []byte) {
		var out schema.AuditLog
		_, err := dec.Decode(ctx, b, &out)
		if err == nil {
			return
		}
		if !errors.Is(err, schema.ErrMalformed) && !errors.Is(err, schema.ErrUnknownSchema) && !errors.Is(err, schema.ErrIncompatibleSchema) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

// FuzzSplitStatements: never panics; statements are non-empty and carry no
// leading or trailing white space.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"SELECT 1; SELECT 2", "SELECT ';' -- x;\n;", "/* ; */ 'a''b' `c`", "SELECT 'x", "a\\';b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		stmts, err := schema.SplitStatements(s)
		if err != nil {
			return
		}
		for _, st := range stmts {
			if st == "" || strings.TrimSpace(st) != st {
				t.Fatalf("statement %q from %q", st, s)
			}
		}
	})
}

// FuzzCreateTableColumns: never panics; parsed columns have a name and a
// type that is already normalized.
func FuzzCreateTableColumns(f *testing.F) {
	c, err := schema.EmbeddedContract()
	require.NoError(f, err)
	f.Add(c.DDL[0])
	f.Add("CREATE TABLE t (`a` Map(String,String) CODEC(ZSTD), INDEX i a TYPE set(0) GRANULARITY 1)")
	f.Add("CREATE TABLE t (a String DEFAULT 'x)'")
	f.Fuzz(func(t *testing.T, s string) {
		cols, err := schema.CreateTableColumns(s)
		if err != nil {
			return
		}
		for _, col := range cols {
			if col.CHType == "" || schema.NormalizeType(col.CHType) != col.CHType {
				t.Fatalf("column %+v from %q", col, s)
			}
		}
	})
}

// FuzzParseColumns: never panics; NormalizeType is idempotent on every type.
func FuzzParseColumns(f *testing.F) {
	f.Add("a\tString\nb\tArray(Tuple(x String, y Map(String,String)))\n")
	f.Add("a\tDateTime('UTC')")
	f.Fuzz(func(t *testing.T, s string) {
		cols, err := schema.ParseColumns(s)
		if err != nil {
			return
		}
		for _, col := range cols {
			if n := schema.NormalizeType(col.CHType); n != col.CHType {
				t.Fatalf("not idempotent: %q → %q", col.CHType, n)
			}
		}
	})
}
