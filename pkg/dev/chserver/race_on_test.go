//go:build race

package chserver_test

// auditRows is the row count of the 46-column round trip; the race detector
// makes clickhouse-go's reflection-heavy Append about 10x slower.
const auditRows = 20_000
