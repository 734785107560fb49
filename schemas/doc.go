// Package schemas embeds the auditpipe schema contract files: the seed's
// column list, every released version of the Avro schema (the current one
// as AvroSchema), the ClickHouse migrations and the threat detections.
package schemas
