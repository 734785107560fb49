// Package openaisim simulates OpenAI's audit-log Admin API
// (GET /v1/organization/audit_logs) and the Admin API's inventory listings
// (/v1/organization/users, …/projects/{id}/api_keys, …) with seeded data,
// scripted faults, events dropped on purpose and a ground-truth record of
// everything it served, for tests, demos and load. The inventory follows
// the audit log the simulator generates (inventory.go says who owns what).
package openaisim
