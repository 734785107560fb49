// Package collect runs one source's collection: time-window queries with
// overlap and dedup, periodic re-scans for late arrivals, and one Kafka
// transaction per slice that carries the new events and the source's state.
package collect
