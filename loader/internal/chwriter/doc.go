// Package chwriter writes AuditLog rows into ClickHouse with clickhouse-go's
// columnar batch API and applies the schema migrations.
package chwriter
