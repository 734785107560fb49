// Package avroenc provides a reflection-free Avro binary encoder for
// schema.AuditLog in the Confluent wire format, checked against the
// contract schema at startup.
package avroenc
