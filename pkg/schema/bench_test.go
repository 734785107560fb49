package schema_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

func BenchmarkSerdeEncode(b *testing.B) {
	_, cl := newRegistry(b)
	serde, _, err := schema.NewSerde(context.Background(), cl, contract.SubjectEnriched, true)
	require.NoError(b, err)
	l := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := serde.Encode(l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecoderDecode(b *testing.B) {
	ctx := context.Background()
	_, cl := newRegistry(b)
	serde, _, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
	require.NoError(b, err)
	dec, err := schema.NewDecoder(cl, 0)
	require.NoError(b, err)
	msg, err := serde.Encode(sample())
	require.NoError(b, err)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var l schema.AuditLog
	for b.Loop() {
		if _, err := dec.Decode(ctx, msg, &l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadPath compares the dashboards' two read paths (0002) on a
// year of synthetic events from 20 workspaces (AUDITPIPE_BENCH_EVENTS,
// default 1,000,000, inserted once; the first recount counts them all): a
// time-series panel (events per day by type for a year) and a top-N panel
// (top countries of one workspace), from the hourly counts
// openai_audit_counts and from the view over openai_audit_logs FINAL. Two
// shapes of data: "spread" (20 workspaces over a year, 500 actors, 50
// projects, 7 countries, 6 event names, each combination as likely: about
// six events an hour per workspace, so almost every event is a key of its
// own, the worst case for counts) and "busy" (one workspace, the same
// number of events in 30 days, 3 projects, 2 countries, 3 names: about
// 1,400 events an hour, a big organization). docs/dashboards.md records
// the figures.
func BenchmarkReadPath(b *testing.B) {
	if _, ok := chdb.LibraryPath(); !ok {
		b.Fatal("libchdb not found: run `make deps`")
	}
	n := 1_000_000
	if s := os.Getenv("AUDITPIPE_BENCH_EVENTS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	db, err := chdb.Open(chdb.Options{Path: b.TempDir(), PoolSize: 1})
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close(context.Background()) })
	c, err := db.Acquire(context.Background())
	require.NoError(b, err)
	defer c.Release()
	exec := func(q string) string {
		r, err := c.Query(q, "TSV", nil)
		require.NoError(b, err, q)
		defer r.Close()
		return string(r.Bytes())
	}
	for _, shape := range []struct {
		name                                string
		workspaces, days                    int
		actors, projects, countries, events int
	}{
		{"spread", 20, 365, 500, 50, 7, 6},
		{"busy", 1, 30, 20, 3, 2, 3},
	} {
		database := "bench_" + shape.name
		exec("CREATE DATABASE " + database)
		migs, err := schema.Migrations(schema.MigrationOptions{Database: database})
		require.NoError(b, err)
		for _, m := range migs {
			for _, s := range m.Statements {
				exec(s)
			}
		}
		start := time.Now()
		exec(fmt.Sprintf(`INSERT INTO %[1]s.openai_audit_logs (workspaceID, sourceID, id, eventTime, receivedAt, eventName, eventType,
			readOnly, projectID, projectName, srcASCountryCode, actorUserEmail, rawLog)
		SELECT concat('ws', toString(number %% %[7]d)), 'src', hex(cityHash64(number)),
			toDateTime('2025-12-01 00:00:00') + intDiv(number * %[8]d, %[2]d) AS t, t + 5,
			['login.succeeded', 'login.failed', 'api_key.created', 'project.updated', 'user.added', 'organization.updated'][number %% %[6]d + 1] AS name,
			splitByChar('.', name)[1], false, concat('proj_', toString(number %% %[4]d)), concat('Project ', toString(number %% %[4]d)),
			['US', 'DE', 'FR', 'JP', 'BR', 'IN', 'GB'][number %% %[5]d + 1], concat('user', toString(number %% %[3]d), '@example.com'), '{}'
		FROM numbers(%[2]d) SETTINGS max_insert_block_size = 100000`, database, n, shape.actors, shape.projects, shape.countries, shape.events,
			shape.workspaces, shape.days*86400))
		inserted := time.Since(start)
		start = time.Now()
		exec("SYSTEM REFRESH VIEW " + database + "_rollups.recount_hours")
		exec("SYSTEM WAIT VIEW " + database + "_rollups.recount_hours")
		b.Logf("%s: %d events inserted in %s (dirty-hours view included), recounted in %s; counts: %s rows", shape.name, n, inserted.Round(time.Millisecond),
			time.Since(start).Round(time.Millisecond), strings.TrimSpace(exec("SELECT count() FROM "+database+".openai_audit_counts")))
		require.Equal(b, strconv.Itoa(n)+"\n", exec("SELECT sum(events) FROM "+database+".openai_audit_counts"))
		year := "hour >= toDateTime('2025-12-01 00:00:00') AND hour <= toDateTime('2026-12-01 00:00:00')"
		yearEvents := strings.ReplaceAll(year, "hour", "eventTime")
		for _, bc := range []struct{ name, q string }{
			{"by-type-per-day/counts", "SELECT toStartOfInterval(hour, INTERVAL 86400 second) AS time, eventType, sum(events) FROM " + database + ".openai_audit_counts WHERE " + year + " GROUP BY time, eventType ORDER BY time"},
			{"by-type-per-day/final", "SELECT toStartOfInterval(eventTime, INTERVAL 86400 second) AS time, eventType, count() FROM " + database + ".openai_audit_events WHERE " + yearEvents + " GROUP BY time, eventType ORDER BY time"},
			{"top-countries-one-workspace/counts", "SELECT country, sum(events) AS e FROM " + database + ".openai_audit_counts WHERE workspaceID = 'ws0' AND " + year + " GROUP BY country ORDER BY e DESC LIMIT 15"},
			{"top-countries-one-workspace/final", "SELECT srcASCountryCode, count() AS e FROM " + database + ".openai_audit_events WHERE workspaceID = 'ws0' AND " + yearEvents + " GROUP BY srcASCountryCode ORDER BY e DESC LIMIT 15"},
		} {
			b.Run(shape.name+"/"+bc.name, func(b *testing.B) {
				for b.Loop() {
					exec(bc.q)
				}
			})
		}
	}
}
