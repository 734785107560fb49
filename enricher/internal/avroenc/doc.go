// Package avroenc encodes schema.AuditLog records in the Confluent wire
// format with hamba/avro, tuned for the enricher's hot path: typed
// records, reused writers and pooled output buffers, and maps written in
// their byte-identical array-of-entries form, so that encoding allocates
// nothing.
package avroenc
