package schema_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

func ExampleNewSerde() {
	reg := srfake.New()
	defer reg.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl, err := sr.NewClient(sr.URLs(reg.URL()), sr.HTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	// The enricher registers the schema (or only looks it up) and encodes.
	serde, id, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b, err := serde.Encode(schema.AuditLog{ID: "e1", EventName: "login.succeeded", EventTime: at, ReceivedAt: at})
	if err != nil {
		panic(err)
	}
	fmt.Printf("schema id %d, header % x\n", id, b[:5])

	// The loader decodes records of any compatible writer schema.
	dec, err := schema.NewDecoder(cl, 0)
	if err != nil {
		panic(err)
	}
	var l schema.AuditLog
	if _, err := dec.Decode(ctx, b, &l); err != nil {
		panic(err)
	}
	fmt.Println(l.EventName, l.EventTime.Format(time.RFC3339))
	// Output:
	// schema id 1, header 00 00 00 00 01
	// login.succeeded 2026-05-01T12:00:00Z
}

func ExampleColumns() {
	cols := schema.Columns()
	fmt.Println(len(cols), cols[0].Name, cols[0].CHType)
	fmt.Println(cols[3].Name, cols[3].CHType)
	// Output:
	// 46 workspaceID String
	// sourceTTL UInt32
}

func ExampleMigrations() {
	migs, err := schema.Migrations(schema.MigrationOptions{Database: "audit"})
	if err != nil {
		panic(err)
	}
	for _, m := range migs {
		fmt.Printf("%04d_%s: %d statement(s)\n", m.Version, m.Name, len(m.Statements))
	}
	// Output:
	// 0001_create_openai_audit_logs: 1 statement(s)
	// 0002_dashboard_read_path: 8 statement(s)
	// 0003_create_auditpipe_dashboards: 1 statement(s)
	// 0004_create_inventory: 4 statement(s)
	// 0005_inventory_dashboards: 1 statement(s)
}
