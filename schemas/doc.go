// Package schemas embeds the auditpipe schema contract files: the seed's
// column list, the Avro schema and the ClickHouse migrations.
package schemas
