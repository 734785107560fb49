package chwriter

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// enrichment is schema.Enrichment with the tuple element names
// clickhouse-go matches struct fields by.
type enrichment struct {
	Data     map[string]string `ch:"data"`
	Name     string            `ch:"name"`
	Provider string            `ch:"provider"`
	Type     string            `ch:"type"`
	Value    string            `ch:"value"`
}

// appendColumns appends rows column by column (one typed slice per column,
// in table order), which avoids per-row reflection over the struct.
func appendColumns(b driver.Batch, rows []*schema.AuditLog) error {
	n := len(rows)
	str := func(f func(*schema.AuditLog) string) []string {
		out := make([]string, n)
		for i := range rows {
			out[i] = f(rows[i])
		}
		return out
	}
	u32 := func(f func(*schema.AuditLog) int64) []uint32 {
		out := make([]uint32, n)
		for i := range rows {
			out[i] = uint32(f(rows[i])) //nolint:gosec // rows are validated against the UInt32 range at decode time
		}
		return out
	}
	f64 := func(f func(*schema.AuditLog) float64) []float64 {
		out := make([]float64, n)
		for i := range rows {
			out[i] = f(rows[i])
		}
		return out
	}
	tm := func(f func(*schema.AuditLog) time.Time) []time.Time {
		out := make([]time.Time, n)
		for i := range rows {
			out[i] = f(rows[i])
		}
		return out
	}
	mp := func(f func(*schema.AuditLog) map[string]string) []map[string]string {
		out := make([]map[string]string, n)
		for i := range rows {
			m := f(rows[i])
			if m == nil {
				m = map[string]string{}
			}
			out[i] = m
		}
		return out
	}
	resources := make([][]string, n)
	enrichments := make([][]enrichment, n)
	readOnly := make([]bool, n)
	for i := range rows {
		r := rows[i]
		resources[i] = r.Resources
		if resources[i] == nil {
			resources[i] = []string{}
		}
		es := make([]enrichment, len(r.Enrichments))
		for j, e := range r.Enrichments {
			d := e.Data
			if d == nil {
				d = map[string]string{}
			}
			es[j] = enrichment{Data: d, Name: e.Name, Provider: e.Provider, Type: e.Type, Value: e.Value}
		}
		enrichments[i] = es
		readOnly[i] = r.ReadOnly
	}

	cols := []any{
		str(func(r *schema.AuditLog) string { return r.WorkspaceID }),
		str(func(r *schema.AuditLog) string { return r.SourceID }),
		str(func(r *schema.AuditLog) string { return r.SourceType }),
		u32(func(r *schema.AuditLog) int64 { return r.SourceTTL }),
		tm(func(r *schema.AuditLog) time.Time { return r.ReceivedAt }),
		str(func(r *schema.AuditLog) string { return r.ID }),
		tm(func(r *schema.AuditLog) time.Time { return r.EventTime }),
		str(func(r *schema.AuditLog) string { return r.EventName }),
		str(func(r *schema.AuditLog) string { return r.EventID }),
		str(func(r *schema.AuditLog) string { return r.SrcIP }),
		str(func(r *schema.AuditLog) string { return r.SrcASCountryCode }),
		u32(func(r *schema.AuditLog) int64 { return r.SrcASNumber }),
		str(func(r *schema.AuditLog) string { return r.SrcASOrganization }),
		str(func(r *schema.AuditLog) string { return r.SrcCity }),
		str(func(r *schema.AuditLog) string { return r.SrcConnectionType }),
		str(func(r *schema.AuditLog) string { return r.SrcISP }),
		f64(func(r *schema.AuditLog) float64 { return r.SrcLatitude }),
		f64(func(r *schema.AuditLog) float64 { return r.SrcLongitude }),
		str(func(r *schema.AuditLog) string { return r.SrcUserType }),
		str(func(r *schema.AuditLog) string { return r.DstIP }),
		str(func(r *schema.AuditLog) string { return r.DstASCountryCode }),
		u32(func(r *schema.AuditLog) int64 { return r.DstASNumber }),
		str(func(r *schema.AuditLog) string { return r.DstASOrganization }),
		str(func(r *schema.AuditLog) string { return r.DstCity }),
		str(func(r *schema.AuditLog) string { return r.DstConnectionType }),
		str(func(r *schema.AuditLog) string { return r.DstISP }),
		f64(func(r *schema.AuditLog) float64 { return r.DstLatitude }),
		f64(func(r *schema.AuditLog) float64 { return r.DstLongitude }),
		str(func(r *schema.AuditLog) string { return r.DstUserType }),
		mp(func(r *schema.AuditLog) map[string]string { return r.Actor }),
		mp(func(r *schema.AuditLog) map[string]string { return r.Tags }),
		resources,
		str(func(r *schema.AuditLog) string { return r.ServiceName }),
		enrichments,
		readOnly,
		str(func(r *schema.AuditLog) string { return r.RawLog }),
		str(func(r *schema.AuditLog) string { return r.EventType }),
		str(func(r *schema.AuditLog) string { return r.ActorType }),
		str(func(r *schema.AuditLog) string { return r.ActorIP }),
		str(func(r *schema.AuditLog) string { return r.ActorUserID }),
		str(func(r *schema.AuditLog) string { return r.ActorUserEmail }),
		str(func(r *schema.AuditLog) string { return r.APIKeyID }),
		str(func(r *schema.AuditLog) string { return r.APIKeyType }),
		str(func(r *schema.AuditLog) string { return r.ServiceAccountID }),
		str(func(r *schema.AuditLog) string { return r.ProjectID }),
		str(func(r *schema.AuditLog) string { return r.ProjectName }),
	}
	if len(cols) != len(b.Columns()) {
		return fmt.Errorf("insert has %d columns, rows have %d", len(b.Columns()), len(cols))
	}
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %s: %w", b.Columns()[i].Name(), err)
		}
	}
	return nil
}
