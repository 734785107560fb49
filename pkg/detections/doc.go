// Package detections installs and runs auditpipe's threat detections inside
// ClickHouse: one refreshable materialized view per rule of
// schemas/detections/rules, each appending findings to the table
// openai_audit_detections, with per-rule switches and thresholds in the
// table detection_settings. No other service is involved: ClickHouse runs
// every rule on its own schedule.
//
// Besides the audit-log rules, posture rules read the organization's
// inventory (openai_inventory_now, openai_inventory_keys) and audit_gap
// compares the inventory's change rows with the audit log; their template
// functions are inventory, inventoryKeys, inventoryChanges,
// inventorySnapshots and current (docs/inventory.md).
//
// The objects live in a dedicated database (Options.DetectionsDatabase,
// "<database>_detections" by default), created Atomic on a single node and
// Replicated in cluster mode, because refreshable materialized views need
// one of those engines. The rules read openai_audit_logs in the main
// database.
//
// Rules are SQL SELECT statements (Go text/template) with a YAML metadata
// header; Rules parses them, Install renders and installs them, RunNow
// refreshes views on demand. docs/detections.md describes every rule, the
// knobs and how to route findings.
package detections
