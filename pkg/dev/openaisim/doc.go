// Package openaisim simulates OpenAI's audit-log Admin API
// (GET /v1/organization/audit_logs) with seeded data, scripted faults and
// a ground-truth record of everything it served, for tests, demos and load.
package openaisim
