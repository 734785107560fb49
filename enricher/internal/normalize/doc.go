// Package normalize turns one raw OpenAI audit-log event and its Kafka
// headers into the 46-column schema.AuditLog record, or a classified
// permanent error.
package normalize
