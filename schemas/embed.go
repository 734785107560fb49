package schemas

import "embed"

// AvroVersion is the version of the current Avro schema: AvroSchema is
// avro/openai_audit_logs.v<AvroVersion>.avsc. A release that changes the
// schema adds the next file and moves both this constant and AvroSchema's
// embed line to it; a released file is never edited.
const AvroVersion = 1

// AvroSchema is the current Avro record schema of one normalized audit
// event (avro/openai_audit_logs.v1.avsc): the 46 columns of
// openai_audit_logs.
//
//go:embed avro/openai_audit_logs.v1.avsc
var AvroSchema string

// AvroVersions holds every released version of the Avro schema,
// avro/openai_audit_logs.v<N>.avsc for N = 1 … AvroVersion, the current one
// included. The evolution check (github.com/auditpipe/auditpipe/pkg/schema.
// CheckEvolution) requires the current version to read, and be read by,
// every earlier one.
//
//go:embed avro/openai_audit_logs.v*.avsc
var AvroVersions embed.FS

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
