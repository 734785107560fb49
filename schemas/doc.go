// Package schemas embeds the auditpipe schema contract files: the seed's
// column list, the Avro schema, the ClickHouse migrations and the threat
// detections.
package schemas
