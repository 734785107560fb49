package schemas

import "embed"

// AvroSchema is the Avro record schema of one normalized audit event
// (avro/openai_audit_logs.avsc): the 46 columns of openai_audit_logs.
//
//go:embed avro/openai_audit_logs.avsc
var AvroSchema string

// SeedColumns is the seed's column list (seed_columns.tsv): one
// "name<TAB>ClickHouse type" line per column, in table order. It is the
// source of truth the contract tests compare everything else against.
//
//go:embed seed_columns.tsv
var SeedColumns string

// Migrations holds the ClickHouse migrations as Go text/template files under
// clickhouse/migrations/, named NNNN_name.sql. Render them with
// github.com/auditpipe/auditpipe/pkg/schema.Migrations.
//
//go:embed clickhouse/migrations/*.sql
var Migrations embed.FS

// Detections holds the threat detections: detections/tables.sql (the
// findings, rules and settings tables, Go text/template) and one file per
// rule under detections/rules/<id>.sql, a YAML metadata header in "--"
// comments followed by a SELECT template. Install them with
// github.com/auditpipe/auditpipe/pkg/detections.
//
//go:embed detections/tables.sql detections/rules/*.sql
var Detections embed.FS
