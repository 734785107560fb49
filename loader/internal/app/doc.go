// Package app wires the loader: configuration, the ClickHouse writer, the
// schema migrations and the consuming pipeline.
package app
