package schema_test

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

func TestMigrationsFromFS(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		opts    schema.MigrationOptions
		wantErr string
		check   func(t *testing.T, migs []schema.Migration)
	}{
		{
			name: "sorted by version, statements split, non-sql ignored",
			fsys: fstest.MapFS{
				"0002_add_b.sql":  file("ALTER TABLE {{.Database}}.t{{.OnCluster}} ADD COLUMN IF NOT EXISTS b String; -- done"),
				"0001_create.sql": file("-- the first\nCREATE TABLE {{.Database}}.{{local \"t\"}} (a String) ENGINE = {{engine \"MergeTree\" \"t\"}} ORDER BY a;\n\nSELECT 'a;b';"),
				"README.md":       file("not a migration"),
			},
			opts: schema.MigrationOptions{Database: "db"},
			check: func(t *testing.T, migs []schema.Migration) {
				require.Len(t, migs, 2)
				assert.Equal(t, 1, migs[0].Version)
				assert.Equal(t, "create", migs[0].Name)
				assert.Equal(t, []string{"CREATE TABLE db.t (a String) ENGINE = MergeTree() ORDER BY a", "SELECT 'a;b'"}, migs[0].Statements)
				assert.Equal(t, []string{"ALTER TABLE db.t ADD COLUMN IF NOT EXISTS b String"}, migs[1].Statements)
				assert.NotEqual(t, migs[0].Checksum, migs[1].Checksum)
			},
		},
		{
			name: "cluster rendering",
			fsys: fstest.MapFS{"0001_create.sql": file("CREATE TABLE {{.Database}}.{{local \"t\"}}{{.OnCluster}} (a String) ENGINE = {{engine \"MergeTree\" \"t\"}} ORDER BY a")},
			opts: schema.MigrationOptions{Cluster: "c-1", ReplicationPath: "/ch/{shard}", ReplicaName: "r"},
			check: func(t *testing.T, migs []schema.Migration) {
				assert.Equal(t, []string{"CREATE TABLE default.t_local ON CLUSTER `c-1` (a String) ENGINE = ReplicatedMergeTree('/ch/{shard}/t_local', 'r') ORDER BY a"}, migs[0].Statements)
			},
		},
		{name: "bad name", fsys: fstest.MapFS{"1_create.sql": file("SELECT 1")}, wantErr: `migration file "1_create.sql": want NNNN_lower_snake_name.sql`},
		{name: "upper case name", fsys: fstest.MapFS{"0001_Create.sql": file("SELECT 1")}, wantErr: "want NNNN_lower_snake_name.sql"},
		{name: "gap", fsys: fstest.MapFS{"0001_a.sql": file("SELECT 1"), "0003_c.sql": file("SELECT 1")}, wantErr: "migration 0003_c: want version 2"},
		{name: "duplicate version", fsys: fstest.MapFS{"0001_a.sql": file("SELECT 1"), "0001_b.sql": file("SELECT 1")}, wantErr: "want version 2"},
		{name: "starts at zero", fsys: fstest.MapFS{"0000_a.sql": file("SELECT 1")}, wantErr: "want version 1"},
		{name: "empty", fsys: fstest.MapFS{}, wantErr: "no migrations"},
		{name: "only comments", fsys: fstest.MapFS{"0001_a.sql": file("-- nothing\n/* here */")}, wantErr: "has no statements"},
		{name: "unknown field", fsys: fstest.MapFS{"0001_a.sql": file("SELECT {{.Nope}}")}, wantErr: "rendering migration 0001_a.sql"},
		{name: "bad template", fsys: fstest.MapFS{"0001_a.sql": file("SELECT {{")}, wantErr: "parsing migration 0001_a.sql"},
		{name: "unterminated quote", fsys: fstest.MapFS{"0001_a.sql": file("SELECT 'x")}, wantErr: "unterminated quoted string"},
		{name: "bad database", fsys: fstest.MapFS{"0001_a.sql": file("SELECT 1")}, opts: schema.MigrationOptions{Database: "a;DROP"}, wantErr: `database: "a;DROP" is not a plain identifier`},
		{name: "bad cluster", fsys: fstest.MapFS{"0001_a.sql": file("SELECT 1")}, opts: schema.MigrationOptions{Cluster: "a`b"}, wantErr: "cluster:"},
		{name: "bad replica", fsys: fstest.MapFS{"0001_a.sql": file("SELECT 1")}, opts: schema.MigrationOptions{ReplicaName: "a'b"}, wantErr: "replica_name:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			migs, err := schema.MigrationsFromFS(tt.fsys, tt.opts)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, migs)
		})
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1;SELECT 2;", []string{"SELECT 1", "SELECT 2"}},
		{"SELECT ';' -- a;b\n; SELECT \"x;\" /* ; */ , `y;`", []string{"SELECT ';'", "SELECT \"x;\"   , `y;`"}},
		{"SELECT 'it''s;' ; SELECT 'a\\';'", []string{"SELECT 'it''s;'", "SELECT 'a\\';'"}},
		{"-- only\n;\n/* c */;", nil},
	}
	for _, tt := range tests {
		got, err := schema.SplitStatements(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"SELECT 'x", "SELECT `x", "SELECT /* x"} {
		_, err := schema.SplitStatements(bad)
		assert.Error(t, err, bad)
	}
}

func TestCreateTableColumns(t *testing.T) {
	tests := []struct {
		name    string
		stmt    string
		want    []schema.Column
		wantErr string
	}{
		{
			name: "clauses after the type are ignored",
			stmt: "create table if not exists db.`t` on cluster c (`a b` String DEFAULT 'x,y' CODEC(ZSTD(1)), n UInt32 COMMENT 'n (a, b)', " +
				"m Map(String,String) MATERIALIZED map(), t DateTime('UTC'), INDEX i n TYPE minmax GRANULARITY 1, " +
				"CONSTRAINT c CHECK n > 0, PROJECTION p (SELECT n ORDER BY n)) ENGINE = MergeTree ORDER BY n",
			want: []schema.Column{{"a b", "String"}, {"n", "UInt32"}, {"m", "Map(String, String)"}, {"t", "DateTime('UTC')"}},
		},
		{
			name: "comments and line breaks",
			stmt: "-- header (x)\nCREATE TABLE t\n(\n  a Array(\n    Tuple(x String, -- c\n y UInt32)\n  ) /* z, w */\n)",
			want: []schema.Column{{"a", "Array(Tuple(x String, y UInt32))"}},
		},
		{name: "not create", stmt: "SELECT 1", wantErr: "not a CREATE statement"},
		{name: "create view", stmt: "CREATE VIEW v AS SELECT 1", wantErr: "not a CREATE TABLE"},
		{name: "as other", stmt: "CREATE TABLE t AS u ENGINE = Distributed(c, d, u)", wantErr: "has no column list"},
		{name: "no list", stmt: "CREATE TABLE t ENGINE = Memory", wantErr: "no column list"},
		{name: "no type", stmt: "CREATE TABLE t (a DEFAULT 1)", wantErr: `column "a" has no type`},
		{name: "empty element", stmt: "CREATE TABLE t (a String,)", wantErr: "empty element"},
		{name: "unbalanced", stmt: "CREATE TABLE t (a Array(String)", wantErr: "no column list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := schema.CreateTableColumns(tt.stmt)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNormalizeType(t *testing.T) {
	for in, want := range map[string]string{
		"String":                  "String",
		" Map( String ,String ) ": "Map(String, String)",
		"Array(Tuple(\n    data Map(String, String),\n    name String))": "Array(Tuple(data Map(String, String), name String))",
		"DateTime( 'Europe/A  B' )":                                      "DateTime('Europe/A  B')",
		"Tuple(a  String,b\tUInt32)":                                     "Tuple(a String, b UInt32)",
	} {
		assert.Equal(t, want, schema.NormalizeType(in), in)
	}
}

func TestParseColumns(t *testing.T) {
	cols, err := schema.ParseColumns("a\tString\r\n\nb\tMap(String,String)\n")
	require.NoError(t, err)
	assert.Equal(t, []schema.Column{{"a", "String"}, {"b", "Map(String, String)"}}, cols)

	for in, wantErr := range map[string]string{
		"":                   "no columns",
		"a String":           "line 1: want name<TAB>type",
		"a\tString\tx":       "want name<TAB>type",
		"a\tString\na\tInt8": `line 2: column "a" already on line 1`,
		"\t String":          "line 1: empty name or type",
	} {
		_, err := schema.ParseColumns(in)
		assert.ErrorContains(t, err, wantErr, in)
	}
}
