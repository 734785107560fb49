// Package mmdbgen writes small synthetic MaxMind databases (City, ASN, ISP,
// Connection-Type and Enterprise) from a list of networks, for tests and the
// dev stack.
package mmdbgen
