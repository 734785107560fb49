// Package app provides the enricher service: its configuration and Run,
// which wires the geo databases, the schema registry and the
// transactional pipeline, plus the replay command.
package app
