// Package state holds a source's collection state (per-stream cursors and
// the dedup memory of published event ids) and its compact binary encoding
// for the compacted state topic.
package state
