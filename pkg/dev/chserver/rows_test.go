package chserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// auditRow is one openai_audit_logs row in the Go types clickhouse-go uses
// for each column type: String string, UInt32 uint32, DateTime time.Time,
// Float64 float64, Bool bool, Map(String, String) map[string]string,
// Array(String) []string, and the named-tuple array []map[string]any.
type auditRow struct {
	workspaceID, sourceID, sourceType     string
	sourceTTL                             uint32
	receivedAt                            time.Time
	id                                    string
	eventTime                             time.Time
	eventName, eventID, srcIP             string
	srcASCountryCode                      string
	srcASNumber                           uint32
	srcASOrganization, srcCity            string
	srcConnectionType, srcISP             string
	srcLatitude, srcLongitude             float64
	srcUserType, dstIP, dstASCountryCode  string
	dstASNumber                           uint32
	dstASOrganization, dstCity            string
	dstConnectionType, dstISP             string
	dstLatitude, dstLongitude             float64
	dstUserType                           string
	actor, tags                           map[string]string
	resources                             []string
	serviceName                           string
	enrichments                           []map[string]any
	readOnly                              bool
	rawLog, eventType, actorType, actorIP string
	actorUserID, actorUserEmail           string
	apiKeyID, apiKeyType                  string
	serviceAccountID, projectID           string
	projectName                           string
}

// ptrs returns pointers to the fields in table order (for Scan); values
// dereferences them (for Append).
func (r *auditRow) ptrs() []any {
	return []any{
		&r.workspaceID, &r.sourceID, &r.sourceType, &r.sourceTTL, &r.receivedAt, &r.id, &r.eventTime,
		&r.eventName, &r.eventID, &r.srcIP, &r.srcASCountryCode, &r.srcASNumber, &r.srcASOrganization,
		&r.srcCity, &r.srcConnectionType, &r.srcISP, &r.srcLatitude, &r.srcLongitude, &r.srcUserType,
		&r.dstIP, &r.dstASCountryCode, &r.dstASNumber, &r.dstASOrganization, &r.dstCity,
		&r.dstConnectionType, &r.dstISP, &r.dstLatitude, &r.dstLongitude, &r.dstUserType,
		&r.actor, &r.tags, &r.resources, &r.serviceName, &r.enrichments, &r.readOnly, &r.rawLog,
		&r.eventType, &r.actorType, &r.actorIP, &r.actorUserID, &r.actorUserEmail, &r.apiKeyID,
		&r.apiKeyType, &r.serviceAccountID, &r.projectID, &r.projectName,
	}
}

func (r *auditRow) values() []any {
	p := r.ptrs()
	v := make([]any, len(p))
	for i, x := range p {
		switch x := x.(type) {
		case *string:
			v[i] = *x
		case *uint32:
			v[i] = *x
		case *time.Time:
			v[i] = *x
		case *float64:
			v[i] = *x
		case *bool:
			v[i] = *x
		case *map[string]string:
			v[i] = *x
		case *[]string:
			v[i] = *x
		case *[]map[string]any:
			v[i] = *x
		default:
			panic(fmt.Sprintf("unhandled %T", x))
		}
	}
	return v
}

// normalize makes scanned and generated rows comparable (UTC times, non-nil
// empty maps and slices).
func (r *auditRow) normalize() {
	r.receivedAt, r.eventTime = r.receivedAt.UTC(), r.eventTime.UTC()
	for _, m := range []*map[string]string{&r.actor, &r.tags} {
		if *m == nil {
			*m = map[string]string{}
		}
	}
	if r.resources == nil {
		r.resources = []string{}
	}
	if r.enrichments == nil {
		r.enrichments = []map[string]any{}
	}
	for _, e := range r.enrichments {
		if e["data"] == nil {
			e["data"] = map[string]string{}
		}
	}
}

// genRow returns a deterministic row exercising every column type, including
// empty collections, unicode, "\n\n" byte pairs, quotes, tabs and NULs in
// strings, and extreme numeric values.
func genRow(i int) auditRow {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tricky := []string{"", "plain", "tab\there", "nl\n\nnl", "quote'\"`", "nul\x00byte", "ünïcødé ✓", strings.Repeat("long-", 12)}
	s := func(k int) string { return tricky[(i+k)%len(tricky)] }
	r := auditRow{
		workspaceID: fmt.Sprintf("ws-%d", i%7), sourceID: "src-" + s(1), sourceType: "openai",
		sourceTTL:  uint32(i % 3 * 1000),
		receivedAt: base.Add(time.Duration(i) * time.Second), id: fmt.Sprintf("evt-%08d", i),
		eventTime: base.Add(time.Duration(i)*time.Second - time.Hour), eventName: "api_key." + s(2),
		eventID: fmt.Sprintf("audit_log-%x", i), srcIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
		srcASCountryCode: "US", srcASNumber: uint32(i * 2654435761), srcASOrganization: s(3),
		srcCity: s(4), srcConnectionType: "Corporate", srcISP: s(5),
		srcLatitude: float64(i%180) - 90.25, srcLongitude: -float64(i%360) + 0.125, srcUserType: s(6),
		dstIP: "::1", dstASCountryCode: s(7), dstASNumber: ^uint32(0) - uint32(i), dstASOrganization: s(0),
		dstCity: "Zürich", dstConnectionType: s(1), dstISP: "", dstLatitude: 1e-300, dstLongitude: -1.5e300,
		dstUserType: s(2),
		actor:       map[string]string{"type": "session", "email": fmt.Sprintf("u%d@example.com", i), "odd": s(3)},
		tags:        map[string]string{},
		resources:   []string{},
		serviceName: "openai", readOnly: i%2 == 0,
		rawLog:    fmt.Sprintf(`{"id":"evt-%08d","type":"api_key.created","payload":%q}`, i, s(4)),
		eventType: "api_key.created", actorType: "session", actorIP: "192.0.2.1",
		actorUserID: fmt.Sprintf("user-%d", i%101), actorUserEmail: s(5), apiKeyID: "key_" + s(6),
		apiKeyType: "user", serviceAccountID: "", projectID: fmt.Sprintf("proj_%d", i%13), projectName: s(7),
	}
	if i%3 != 0 {
		r.tags = map[string]string{"env": "prod", s(1): s(2)}
		r.resources = []string{"res-" + s(3), s(4), fmt.Sprint(i)}
	}
	for k := range i % 3 {
		r.enrichments = append(r.enrichments, map[string]any{
			"data":     map[string]string{"asn": fmt.Sprint(i + k), "k": s(k)},
			"name":     fmt.Sprintf("geo%d", k),
			"provider": "maxmind",
			"type":     s(k + 1),
			"value":    s(k + 2),
		})
	}
	r.normalize()
	return r
}

// createAuditTable creates openai_audit_logs in database from the schema
// contract's first migration (the dashboards' read path is not needed).
func createAuditTable(t testing.TB, conn clickhouse.Conn, database string) {
	t.Helper()
	migs, err := schema.Migrations(schema.MigrationOptions{Database: database})
	require.NoError(t, err)
	for _, stmt := range migs[0].Statements {
		require.NoError(t, conn.Exec(context.Background(), stmt), stmt)
	}
}

// insertAudit sends rows in one batch.
func insertAudit(t testing.TB, ctx context.Context, conn clickhouse.Conn, table string, rows []auditRow) {
	t.Helper()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
	require.NoError(t, err)
	for i := range rows {
		if err := batch.Append(rows[i].values()...); err != nil {
			require.NoError(t, err)
		}
	}
	require.NoError(t, batch.Send())
}
