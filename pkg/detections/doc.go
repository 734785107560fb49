// Package detections installs and runs auditpipe's threat detections inside
// ClickHouse: one refreshable materialized view per rule of
// schemas/detections/rules, each appending findings to the table
// openai_audit_detections, with per-rule switches and thresholds in the
// table detection_settings. No other service is involved: ClickHouse runs
// every rule on its own schedule.
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
