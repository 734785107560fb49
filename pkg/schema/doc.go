// Package schema provides the auditpipe schema contract in Go: the
// AuditLog record, its Avro schema and Confluent-wire-format Serde over
// franz-go's pkg/sr, the ClickHouse migrations, and the checker that keeps
// them in step with the seed's 46-column table.
//
// The files themselves live in the schemas module (github.com/auditpipe/
// auditpipe/schemas) and are embedded, never copied, so nothing can drift.
package schema
