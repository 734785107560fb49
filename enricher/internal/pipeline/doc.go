// Package pipeline provides the enricher's exactly-once stream: raw audit
// events consumed in a consumer group are normalized, geo-enriched and
// Avro-encoded, and produced to the enriched or dead-letter topic in the
// Kafka transaction that commits their offsets.
package pipeline
