// Package upstream is the HTTP client of OpenAI's audit-log endpoint
// (GET /v1/organization/audit_logs): query encoding, a tolerant page
// decoder that keeps every item's bytes as received, and the retry policy
// of the official SDKs.
package upstream
