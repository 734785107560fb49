//go:build !race

package chserver_test

// auditRows is the row count of the 46-column round trip.
const auditRows = 100_000
