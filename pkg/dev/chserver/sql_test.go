package chserver

import (
	"bytes"
	"strings"
	"testing"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseInsert(t *testing.T) {
	tests := []struct {
		in       string
		ok       bool
		stmt     string
		format   string
		wantData string
	}{
		{in: "INSERT INTO t FORMAT TSV\n1\t2\n", ok: true, stmt: "INSERT INTO t", format: "TSV", wantData: "1\t2\n"},
		{in: "insert into t (a, `format`) format Native\n\n\n\x00", ok: true, stmt: "insert into t (a, `format`)", format: "Native", wantData: "\n\n\x00"},
		{in: "INSERT INTO t FORMAT CSV 1,2", ok: true, stmt: "INSERT INTO t", format: "CSV", wantData: "1,2"},
		{in: "INSERT INTO t FORMAT CSV  \r\n1,2", ok: true, stmt: "INSERT INTO t", format: "CSV", wantData: "1,2"},
		{in: "  -- c\n/* x */ INSERT INTO t SETTINGS async_insert=1 FORMAT `JSONEachRow`\n{}", ok: true,
			stmt: "-- c\n/* x */ INSERT INTO t SETTINGS async_insert=1", format: "JSONEachRow", wantData: "{}"},
		{in: "INSERT INTO t VALUES (1, 'FORMAT x')", ok: true, stmt: "INSERT INTO t", format: "Values", wantData: " (1, 'FORMAT x')"},
		{in: "INSERT INTO t (a) SELECT 1 FORMAT TSV", ok: false},
		{in: "SELECT 1 FORMAT TSV", ok: false},
		{in: "INSERT INTO 'FORMAT TSV'", ok: false},
		{in: "INSERT INTO t FORMAT", ok: false},
		{in: "", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseInsert([]byte(tc.in))
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, strings.TrimSpace(tc.stmt), got.Stmt)
			assert.Equal(t, tc.format, got.Format)
			assert.Equal(t, tc.wantData, tc.in[got.DataStart:])
		})
	}
}

func FuzzParseInsert(f *testing.F) {
	for _, s := range []string{"INSERT INTO t FORMAT TSV\n1", "INSERT INTO t VALUES (1)", "INSERT INTO `x FORMAT", "insert 'a\\'", "INSERT /*"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ins, ok := parseInsert(b)
		if !ok {
			return
		}
		if ins.DataStart < 0 || ins.DataStart > len(b) || ins.Format == "" {
			t.Fatalf("bad result %+v for %q", ins, b)
		}
	})
}

func TestFormatClause(t *testing.T) {
	tests := map[string]string{
		"SELECT 1 FORMAT JSONEachRow":   "JSONEachRow",
		"SELECT 1 format CSV;\n":        "CSV",
		"SELECT 1":                      "",
		"SELECT myFORMAT CSV":           "",
		"SELECT 1 AS FORMAT":            "",
		"FORMAT":                        "",
		"SELECT x FROM t\nFORMAT\tTSV ": "TSV",
	}
	for in, want := range tests {
		assert.Equal(t, want, formatClause(in), in)
	}
}

func FuzzFormatClause(f *testing.F) {
	f.Add("SELECT 1 FORMAT TSV")
	f.Fuzz(func(t *testing.T, s string) {
		if got := formatClause(s); got != "" && !strings.Contains(s, got) {
			t.Fatalf("%q not in %q", got, s)
		}
	})
}

func TestIsHello(t *testing.T) {
	assert.True(t, isHello("SELECT displayName(), version(), revision(), timezone()"))
	assert.True(t, isHello("  SELECT displayName(),\n version(), revision(), timezone() "))
	assert.False(t, isHello("SELECT version()"))
}

// TestEncodeHello decodes the handshake block with clickhouse-go's own
// decoder at the revision the client asks for, and at revision 0.
func TestEncodeHello(t *testing.T) {
	h := hello{displayName: "vm", version: "26.7.2.1", timezone: "Etc/UTC"}
	for _, rev := range []uint64{0, 54460} {
		var blk proto.Block
		r := chproto.NewReader(bytes.NewReader(encodeHello(rev, h)))
		require.NoError(t, blk.Decode(r, rev))
		require.Equal(t, 1, blk.Rows())
		require.Equal(t, []string{"displayName()", "version()", "revision()", "timezone()"}, blk.ColumnsNames())
		assert.Equal(t, "vm", blk.Columns[0].Row(0, false))
		assert.Equal(t, "26.7.2.1", blk.Columns[1].Row(0, false))
		assert.Equal(t, uint32(0), blk.Columns[2].Row(0, false))
		assert.Equal(t, "Etc/UTC", blk.Columns[3].Row(0, false))
	}
}

func TestAcceptedEncoding(t *testing.T) {
	tests := map[string]string{
		"":                     "",
		"gzip":                 "gzip",
		"identity, br;q=0.5":   "br",
		"gzip;q=0, deflate":    "deflate",
		"compress, zstd, gzip": "zstd",
	}
	for in, want := range tests {
		assert.Equal(t, want, acceptedEncoding(in), in)
	}
}

func TestHTTPStatus(t *testing.T) {
	assert.Equal(t, 404, httpStatus(60))
	assert.Equal(t, 400, httpStatus(62))
	assert.Equal(t, 401, httpStatus(516))
	assert.Equal(t, 500, httpStatus(395))
}
