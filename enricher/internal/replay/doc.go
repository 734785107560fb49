// Package replay provides the offset reset that makes the enricher
// reprocess its input from a point in time.
package replay
