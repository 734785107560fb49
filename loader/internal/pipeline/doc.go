// Package pipeline consumes the enriched topic, batches and inserts the
// records into ClickHouse, dead-letters what cannot be loaded and commits
// offsets only after ClickHouse acknowledged the rows.
package pipeline
