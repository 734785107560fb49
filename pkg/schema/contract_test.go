package schema_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

func TestColumnsAreTheSeeds46(t *testing.T) {
	cols := schema.Columns()
	require.Len(t, cols, 46)
	assert.Equal(t, schema.Column{Name: "workspaceID", CHType: "String"}, cols[0])
	assert.Equal(t, schema.Column{Name: "sourceTTL", CHType: "UInt32"}, cols[3])
	assert.Equal(t, schema.Column{Name: "receivedAt", CHType: "DateTime"}, cols[4])
	assert.Equal(t, schema.Column{
		Name:   "enrichments",
		CHType: "Array(Tuple(data Map(String, String), name String, provider String, type String, value String))",
	}, cols[33])
	assert.Equal(t, schema.Column{Name: "projectName", CHType: "String"}, cols[45])

	cols[0].Name = "changed"
	assert.Equal(t, "workspaceID", schema.Columns()[0].Name, "Columns must return a copy")
}

func TestEmbeddedContractHolds(t *testing.T) {
	c, err := schema.EmbeddedContract()
	require.NoError(t, err)
	assert.Empty(t, c.Check())
}

func TestClusterRenderingKeepsTheColumns(t *testing.T) {
	opts := schema.MigrationOptions{Database: "audit", Cluster: "prod"}
	migs, err := schema.Migrations(opts)
	require.NoError(t, err)
	require.Len(t, migs[0].Statements, 2, "local table and Distributed table")

	local, dist := migs[0].Statements[0], migs[0].Statements[1]
	assert.Contains(t, local, "CREATE TABLE IF NOT EXISTS audit.openai_audit_logs_local ON CLUSTER `prod`")
	assert.Contains(t, local, "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/openai_audit_logs_local', '{replica}', receivedAt)")
	assert.Contains(t, local, "replicated_deduplication_window = 10000")
	assert.Contains(t, dist, "CREATE TABLE IF NOT EXISTS audit.openai_audit_logs ON CLUSTER `prod`")
	assert.Contains(t, dist, "ENGINE = Distributed('prod', 'audit', 'openai_audit_logs_local', cityHash64(workspaceID, sourceID, id))")

	cols, err := schema.CreateTableColumns(local)
	require.NoError(t, err)
	assert.Empty(t, schema.CompareColumns("ddl", schema.Columns(), cols))
	_, err = schema.CreateTableColumns(dist)
	require.Error(t, err, "the Distributed table takes its columns AS the local one")
	assert.Equal(t, "openai_audit_logs_local", opts.StorageTable(schema.Table))

	// The dashboards' read path (0002): the view reads the Distributed
	// table; each shard's storage table marks dirty hours in the rollups'
	// Replicated database (one shard), where the recount runs on one
	// replica and every replica holds the counts.
	require.GreaterOrEqual(t, len(migs), 3)
	all := strings.Join(migs[1].Statements, "\n;\n")
	for _, want := range []string{
		"CREATE VIEW IF NOT EXISTS audit.openai_audit_events ON CLUSTER `prod`",
		"FROM audit.openai_audit_logs FINAL",
		"CREATE DATABASE IF NOT EXISTS audit_rollups ON CLUSTER `prod`\nENGINE = Replicated('/clickhouse/auditpipe/databases/audit_rollups', 'all', '{replica}')",
		"ENGINE = ReplicatedReplacingMergeTree(dirtiedAt)",
		"ENGINE = ReplicatedReplacingMergeTree(computedAt)",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS audit.openai_audit_dirty_hours_mv_local ON CLUSTER `prod`\nTO audit_rollups.dirty_hours",
		"FROM audit.openai_audit_logs_local\n;",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS audit_rollups.recount_hours\nREFRESH EVERY 1 MINUTE APPEND",
		"CREATE VIEW IF NOT EXISTS audit.openai_audit_counts ON CLUSTER `prod`",
	} {
		assert.Contains(t, all+";", want)
	}
	assert.Contains(t, migs[2].Statements[0], "CREATE OR REPLACE VIEW audit.auditpipe_dashboards ON CLUSTER `prod`")
}

func TestSingleNodeRendering(t *testing.T) {
	migs, err := schema.Migrations(schema.MigrationOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, migs)
	m := migs[0]
	assert.Equal(t, 1, m.Version)
	assert.Equal(t, "create_openai_audit_logs", m.Name)
	assert.Len(t, m.Checksum, 64)
	require.Len(t, m.Statements, 1)
	s := m.Statements[0]
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS default.openai_audit_logs\n",
		"ENGINE = ReplacingMergeTree(receivedAt)",
		"PARTITION BY toYYYYMM(eventTime)",
		"ORDER BY (workspaceID, sourceID, eventTime, id)",
		"TTL toDateTime(if(sourceTTL = 0, 4291747200,",
		"SETTINGS non_replicated_deduplication_window = 10000",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "ON CLUSTER")
	assert.NotContains(t, s, "{{")
}

// mutate returns a copy of the embedded contract changed by fn.
func mutate(t *testing.T, fn func(*schema.Contract)) schema.Contract {
	t.Helper()
	c, err := schema.EmbeddedContract()
	require.NoError(t, err)
	fn(&c)
	return c
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "mutation target %q must occur once", old)
	return strings.Replace(s, old, new, 1)
}

// withField returns a copy of AuditLog's struct type with field i changed.
func withField(i int, fn func(*reflect.StructField)) reflect.Type {
	t := reflect.TypeFor[schema.AuditLog]()
	fields := make([]reflect.StructField, t.NumField())
	for j := range fields {
		fields[j] = t.Field(j)
	}
	fn(&fields[i])
	return reflect.StructOf(fields)
}

func TestCheckReportsEveryKindOfDrift(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, c *schema.Contract)
		want   string // a substring of exactly one reported mismatch
	}{
		{
			name: "avro field renamed",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.AvroSchema = replaceOnce(t, c.AvroSchema, `"name": "eventID"`, `"name": "eventId"`)
			},
			want: `avro: column 9: name: want "eventID", got "eventId"`,
		},
		{
			name: "avro field retyped",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.AvroSchema = replaceOnce(t, c.AvroSchema, `{"name": "srcASNumber", "type": "long"`, `{"name": "srcASNumber", "type": "int"`)
			},
			want: `avro: column 12: type of "srcASNumber": want UInt32, got <avro int>`,
		},
		{
			name: "avro timestamp lost its logical type",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.AvroSchema = replaceOnce(t, c.AvroSchema, `{"name": "eventTime", "type": {"type": "long", "logicalType": "timestamp-millis"}`, `{"name": "eventTime", "type": "long"`)
			},
			want: `type of "eventTime": want DateTime, got UInt32`,
		},
		{
			name: "avro nested enrichment field renamed",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.AvroSchema = replaceOnce(t, c.AvroSchema, `{"name": "provider"`, `{"name": "vendor"`)
			},
			want: `type of "enrichments": want Array(Tuple(data Map(String, String), name String, provider String`,
		},
		{
			name: "avro default removed",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.AvroSchema = replaceOnce(t, c.AvroSchema, `{"name": "rawLog", "type": "string", "default": ""}`, `{"name": "rawLog", "type": "string"}`)
			},
			want: `avro: field "rawLog" has no default`,
		},
		{
			name: "avro nested default removed",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.AvroSchema = replaceOnce(t, c.AvroSchema, `{"name": "value", "type": "string", "default": ""}`, `{"name": "value", "type": "string"}`)
			},
			want: `avro: field "enrichments.value" has no default`,
		},
		{
			name: "ddl column renamed",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.DDL[0] = replaceOnce(t, c.DDL[0], "    projectName String", "    project_name String")
			},
			want: `ddl: column 46: name: want "projectName", got "project_name"`,
		},
		{
			name: "ddl LowCardinality wrapper",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.DDL[0] = replaceOnce(t, c.DDL[0], "    sourceType String,", "    sourceType LowCardinality(String),")
			},
			want: `ddl: column 3: type of "sourceType": want String, got LowCardinality(String)`,
		},
		{
			name: "ddl Nullable wrapper",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.DDL[0] = replaceOnce(t, c.DDL[0], "    srcLatitude Float64,", "    srcLatitude Nullable(Float64),")
			},
			want: `type of "srcLatitude": want Float64, got Nullable(Float64)`,
		},
		{
			name: "ddl column dropped",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.DDL[0] = replaceOnce(t, c.DDL[0], "    projectName String,\n", "")
			},
			want: `ddl: column 46: missing column "projectName" String`,
		},
		{
			name: "ddl column added",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.DDL[0] = replaceOnce(t, c.DDL[0], "    projectName String,\n", "    projectName String,\n    extra String,\n")
			},
			want: `ddl: column 47: unexpected column "extra" String`,
		},
		{
			name: "go tag renamed",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.Record = withField(5, func(f *reflect.StructField) { f.Tag = `avro:"ID"` })
			},
			want: `go: column 6: name: want "id", got "ID"`,
		},
		{
			name: "go field retyped",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.Record = withField(3, func(f *reflect.StructField) { f.Type = reflect.TypeFor[int32]() })
			},
			want: `go: column 4: type of "sourceTTL": want UInt32, got <go int32>`,
		},
		{
			name: "go tag missing",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.Record = withField(0, func(f *reflect.StructField) { f.Tag = "" })
			},
			want: `go: field .WorkspaceID has no avro tag`,
		},
		{
			name: "seed renamed: every other statement disagrees",
			mutate: func(t *testing.T, c *schema.Contract) {
				c.SeedColumns = replaceOnce(t, c.SeedColumns, "readOnly\tBool", "isReadOnly\tBool")
			},
			want: `go: column 35: name: want "isReadOnly", got "readOnly"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mutate(t, func(c *schema.Contract) { tt.mutate(t, c) })
			got := c.Check()
			require.NotEmpty(t, got)
			var texts []string
			n := 0
			for _, m := range got {
				texts = append(texts, m.String())
				if strings.Contains(m.String(), tt.want) {
					n++
				}
			}
			assert.Equal(t, 1, n, "want exactly one mismatch containing %q, got:\n%s", tt.want, strings.Join(texts, "\n"))
		})
	}
}

func TestSeedRenameIsReportedByEachStatement(t *testing.T) {
	c := mutate(t, func(c *schema.Contract) {
		c.SeedColumns = strings.Replace(c.SeedColumns, "readOnly\tBool", "isReadOnly\tBool", 1)
	})
	sources := map[string]bool{}
	for _, m := range c.Check() {
		sources[m.Source] = true
	}
	assert.Equal(t, map[string]bool{"avro": true, "ddl": true, "go": true}, sources)
}

func TestSeedFileMatchesEmbeddedAvroFieldOrder(t *testing.T) {
	// The .avsc must be readable as plain JSON with the seed's order too; this
	// guards the file itself, independent of the hamba parser.
	cols, err := schema.AvroColumns(schemas.AvroSchema)
	require.NoError(t, err)
	seed := schema.Columns()
	require.Len(t, cols, len(seed))
	for i := range seed {
		assert.Equal(t, seed[i].Name, cols[i].Name)
	}
}

func TestCompareColumnsNormalizesTypeSpelling(t *testing.T) {
	want := []schema.Column{{"m", "Map(String, String)"}}
	got := []schema.Column{{"m", "Map( String ,String )"}}
	assert.Empty(t, schema.CompareColumns("x", want, got))
}

func TestCheckFollowsAdditiveMigrations(t *testing.T) {
	addUserAgent := "ALTER TABLE default.openai_audit_logs ADD COLUMN IF NOT EXISTS userAgent String AFTER actorIP"

	t.Run("a column added by a later migration must be in the seed", func(t *testing.T) {
		c := mutate(t, func(c *schema.Contract) { c.DDL = append(c.DDL, addUserAgent) })
		got := c.Check()
		require.NotEmpty(t, got)
		assert.Equal(t, "ddl: column 40: name: want \"actorUserID\", got \"userAgent\"", got[0].String())
	})

	t.Run("seed, avro and ddl extended together", func(t *testing.T) {
		c := mutate(t, func(c *schema.Contract) {
			c.DDL = append(c.DDL, addUserAgent, addUserAgent) // IF NOT EXISTS: the second is a no-op
			c.SeedColumns = replaceOnce(t, c.SeedColumns, "actorIP\tString\n", "actorIP\tString\nuserAgent\tString\n")
			c.AvroSchema = replaceOnce(t, c.AvroSchema, `{"name": "actorIP", "type": "string", "default": ""},`,
				`{"name": "actorIP", "type": "string", "default": ""}, {"name": "userAgent", "type": "string", "default": ""},`)
		})
		for _, m := range c.Check() {
			assert.Equal(t, "go", m.Source, "only the Go type lags: %s", m)
		}
	})

	t.Run("non-additive changes are refused", func(t *testing.T) {
		for _, alter := range []string{
			"ALTER TABLE openai_audit_logs RENAME COLUMN eventID TO eventId",
			"ALTER TABLE openai_audit_logs ON CLUSTER c MODIFY COLUMN sourceTTL UInt64",
			"ALTER TABLE openai_audit_logs DROP COLUMN rawLog",
			"ALTER TABLE openai_audit_logs ADD COLUMN x String AFTER nope",
		} {
			c := mutate(t, func(c *schema.Contract) { c.DDL = append(c.DDL, alter) })
			got := c.Check()
			require.Len(t, got, 1, alter)
			assert.Equal(t, "ddl", got[0].Source)
		}
	})
}

func TestTableColumns(t *testing.T) {
	cols, err := schema.TableColumns([]string{
		"CREATE TABLE other (z String)",
		"CREATE TABLE db.t (a String, b UInt32)",
		"ALTER TABLE other ADD COLUMN y String",
		"ALTER TABLE `db`.t ADD COLUMN c Bool FIRST, ADD COLUMN IF NOT EXISTS d Array(String) DEFAULT [] AFTER a",
		"SELECT 1",
	}, "t")
	require.NoError(t, err)
	assert.Equal(t, []schema.Column{{"c", "Bool"}, {"a", "String"}, {"d", "Array(String)"}, {"b", "UInt32"}}, cols)

	_, err = schema.TableColumns([]string{"ALTER TABLE t ADD COLUMN a String"}, "t")
	require.ErrorContains(t, err, "before its CREATE TABLE")
	_, err = schema.TableColumns([]string{"CREATE TABLE t (a String)", "CREATE TABLE t (a String)"}, "t")
	require.ErrorContains(t, err, "created twice")
	_, err = schema.TableColumns(nil, "t")
	require.ErrorContains(t, err, "no CREATE TABLE t")
}
