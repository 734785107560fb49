package schema_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// These tests run the migrations in the real ClickHouse engine (libchdb):
// DESCRIBE TABLE must list the seed's columns, and the engine, TTL and
// dedup settings must behave as docs/schema.md promises. They skip when the
// library is missing (fail on CI).

type engine struct {
	t  *testing.T
	db *chdb.DB
}

func openEngine(t *testing.T) *engine {
	t.Helper()
	if _, ok := chdb.LibraryPath(); !ok {
		if os.Getenv("CI") != "" {
			t.Fatal("libchdb not found: run `make deps`")
		}
		t.Skip("libchdb not found: run `make deps`")
	}
	db, err := chdb.Open(chdb.Options{Path: t.TempDir(), PoolSize: 1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close(context.Background())) })
	return &engine{t: t, db: db}
}

func (e *engine) query(q string) string {
	e.t.Helper()
	c, err := e.db.Acquire(context.Background())
	require.NoError(e.t, err)
	defer c.Release()
	r, err := c.Query(q, "TabSeparated", nil)
	require.NoError(e.t, err, q)
	defer r.Close()
	return string(r.Bytes())
}

func (e *engine) migrate(opts schema.MigrationOptions) {
	e.t.Helper()
	e.query("CREATE DATABASE IF NOT EXISTS " + opts.Database)
	migs, err := schema.Migrations(opts)
	require.NoError(e.t, err)
	for _, m := range migs {
		for _, s := range m.Statements {
			e.query(s)
		}
	}
}

func TestEngineDescribeMatchesSeed(t *testing.T) {
	e := openEngine(t)
	opts := schema.MigrationOptions{Database: "contract"}
	e.migrate(opts)
	e.migrate(opts) // idempotent: IF NOT EXISTS

	// DESCRIBE TABLE, compared exactly: with print_pretty_type_names = 0 the
	// engine prints each type on one line, as the seed does.
	plain := describe(t, e.query("DESCRIBE TABLE contract.openai_audit_logs SETTINGS print_pretty_type_names = 0"))
	assert.Equal(t, schema.Columns(), plain)

	// By default (print_pretty_type_names = 1) it indents the named tuple over
	// several lines; only white space differs.
	pretty := describe(t, e.query("DESCRIBE TABLE contract.openai_audit_logs"))
	assert.Contains(t, pretty[33].CHType, "\n")
	assert.Empty(t, schema.CompareColumns("describe", schema.Columns(), pretty))

	desc := e.query("DESCRIBE TABLE contract.openai_audit_logs")
	assert.Contains(t, desc, "rawLog\tString\t\t\t\tZSTD(1)\t", "codecs are allowed")

	engineFull := e.query("SELECT engine_full FROM system.tables WHERE database = 'contract' AND name = 'openai_audit_logs'")
	assert.Contains(t, engineFull, "ReplacingMergeTree(receivedAt)")
	assert.Contains(t, engineFull, "non_replicated_deduplication_window = 10000")
}

const insertRow = `INSERT INTO ttl.openai_audit_logs (workspaceID, sourceID, id, sourceTTL, eventTime, receivedAt, eventName) SETTINGS async_insert = 0 VALUES `

func TestEngineTTLFollowsSourceTTL(t *testing.T) {
	e := openEngine(t)
	e.migrate(schema.MigrationOptions{Database: "ttl"})
	e.query(insertRow + `
		('w', 's', 'expired', 1, '2001-01-01 00:00:00', '2001-01-01 00:00:00', 'a'),
		('w', 's', 'forever', 0, '2001-01-01 00:00:00', '2001-01-01 00:00:00', 'a'),
		('w', 's', 'huge', 4294967295, '2001-01-01 00:00:00', '2001-01-01 00:00:00', 'a'),
		('w', 's', 'wraps', 50000, '2001-01-01 00:00:00', '2001-01-01 00:00:00', 'a'),
		('w', 's', 'recent', 36500, '2001-01-01 00:00:00', '2001-01-01 00:00:00', 'a')`)
	e.query("OPTIMIZE TABLE ttl.openai_audit_logs FINAL")
	assert.Equal(t, "forever\nhuge\nrecent\nwraps\n", e.query("SELECT id FROM ttl.openai_audit_logs ORDER BY id"),
		"sourceTTL 1 day expires; 0 keeps the row; so do TTLs past 2106, where plain DateTime arithmetic would wrap into the past")
}

func TestEngineCollapsesReplayedEvents(t *testing.T) {
	e := openEngine(t)
	e.migrate(schema.MigrationOptions{Database: "ttl"})
	// The same event three times (a re-poll with a newer receivedAt, a
	// replay) plus another event, in separate inserts (separate parts).
	for _, row := range []string{
		`('w', 's', 'e1', 0, '2026-05-01 10:00:00', '2026-05-01 10:01:00', 'first')`,
		`('w', 's', 'e1', 0, '2026-05-01 10:00:00', '2026-05-01 10:09:00', 'newest')`,
		`('w', 's', 'e1', 0, '2026-05-01 10:00:00', '2026-05-01 10:05:00', 'middle')`,
		`('w', 's', 'e2', 0, '2026-05-01 11:00:00', '2026-05-01 11:01:00', 'other')`,
	} {
		e.query(insertRow + row)
	}
	assert.Equal(t, "4\n", e.query("SELECT count() FROM ttl.openai_audit_logs"), "before a merge duplicates are stored")
	assert.Equal(t, "e1\tnewest\ne2\tother\n",
		e.query("SELECT id, eventName FROM ttl.openai_audit_logs FINAL ORDER BY id"), "FINAL keeps the greatest receivedAt")
	assert.Equal(t, "e1\tnewest\ne2\tother\n", e.query(`
		SELECT id, argMax(eventName, receivedAt) FROM ttl.openai_audit_logs
		GROUP BY workspaceID, sourceID, eventTime, id ORDER BY id`), "the argMax pattern agrees with FINAL")
	e.query("OPTIMIZE TABLE ttl.openai_audit_logs FINAL")
	assert.Equal(t, "2\n", e.query("SELECT count() FROM ttl.openai_audit_logs"))
}

func TestEngineDeduplicatesRetriedInserts(t *testing.T) {
	e := openEngine(t)
	e.migrate(schema.MigrationOptions{Database: "ttl"})
	const batch = `('w', 's', 'a', 0, '2026-04-30 23:00:00', '2026-05-01 00:00:00', 'x'),
		('w', 's', 'b', 0, '2026-05-01 01:00:00', '2026-05-01 01:00:00', 'x')` // two partitions
	ins := strings.Replace(insertRow, "SETTINGS async_insert = 0", "SETTINGS async_insert = 0, insert_deduplication_token = 'p0:100-199'", 1)
	e.query(ins + batch)
	e.query(ins + batch) // a retry after a crash: same token
	assert.Equal(t, "2\n", e.query("SELECT count() FROM ttl.openai_audit_logs"))

	other := strings.Replace(ins, "p0:100-199", "p0:200-299", 1)
	e.query(other + batch)
	assert.Equal(t, "4\n", e.query("SELECT count() FROM ttl.openai_audit_logs"), "another token inserts")
}

// describe parses DESCRIBE TABLE output in TabSeparated: name, type, ...
func describe(t *testing.T, out string) []schema.Column {
	t.Helper()
	unescape := strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\\`, `\`)
	var cols []schema.Column
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Split(line, "\t")
		require.GreaterOrEqual(t, len(f), 2, line)
		cols = append(cols, schema.Column{Name: unescape.Replace(f[0]), CHType: unescape.Replace(f[1])})
	}
	return cols
}

// TestEngineReadPathCountsEachEventOnce checks the dashboards' read path
// (0002): the view and the hourly counts count an event once however many
// copies reach the table (a re-poll, a replay with a new insert token), the
// events loaded before the migration are counted (the backfill), a late
// insert into an old hour is counted, and a key that no longer occurs in a
// recounted hour drops out.
func TestEngineReadPathCountsEachEventOnce(t *testing.T) {
	e := openEngine(t)
	e.query("CREATE DATABASE IF NOT EXISTS rp")
	migs, err := schema.Migrations(schema.MigrationOptions{Database: "rp"})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(migs), 2)
	ins := strings.Replace(insertRow, "ttl.", "rp.", 1)
	for _, s := range migs[0].Statements {
		e.query(s)
	}
	// Loaded before the read path exists: only the backfill sees these.
	e.query(ins + `('w', 's', 'e1', 0, '2026-05-01 10:00:10', '2026-05-01 10:01:00', 'login.failed')`)
	e.query(ins + `('w', 's', 'e1', 0, '2026-05-01 10:00:10', '2026-05-01 10:02:00', 'login.failed')`)
	for _, m := range migs[1:] {
		for _, s := range m.Statements {
			e.query(s)
		}
	}
	recount := func() {
		e.query("SYSTEM REFRESH VIEW rp_rollups.recount_hours")
		e.query("SYSTEM WAIT VIEW rp_rollups.recount_hours")
	}
	const counts = "SELECT hour, eventName, sum(events) FROM rp.openai_audit_counts GROUP BY hour, eventName ORDER BY hour, eventName"
	recount()
	assert.Equal(t, "2026-05-01 10:00:00\tlogin.failed\t1\n", e.query(counts), "the backfill")

	// After: copies of events, and a late event in an old hour.
	for _, row := range []string{
		`('w', 's', 'e2', 0, '2026-05-01 10:00:20', '2026-05-01 10:01:00', 'login.failed')`,
		`('w', 's', 'e2', 0, '2026-05-01 10:00:20', '2026-05-01 10:09:00', 'login.failed')`,
		`('w', 's', 'e1', 0, '2026-05-01 10:00:10', '2026-05-01 10:05:00', 'login.failed')`,
		`('w', 's', 'e3', 0, '2026-05-01 11:01:00', '2026-05-01 11:05:00', 'login.succeeded')`,
		`('w', 's', 'e4', 0, '2026-03-01 08:30:00', '2026-03-01 08:31:00', 'api_key.created')`,
	} {
		e.query(ins + row)
	}
	recount()
	want := "2026-03-01 08:00:00\tapi_key.created\t1\n2026-05-01 10:00:00\tlogin.failed\t2\n2026-05-01 11:00:00\tlogin.succeeded\t1\n"
	assert.Equal(t, "4\n", e.query("SELECT count() FROM rp.openai_audit_events"), "the view reads FINAL")
	assert.Equal(t, "(no actor)\n", e.query("SELECT DISTINCT actorName FROM rp.openai_audit_events"))
	assert.Equal(t, want, e.query(counts), "each event counted once")

	// The backfill again (a migration interrupted and re-run) and more
	// recounts: no change.
	backfill := ""
	for _, s := range migs[1].Statements {
		if strings.HasPrefix(s, "INSERT INTO rp_rollups.dirty_hours") {
			backfill = s
		}
	}
	require.NotEmpty(t, backfill)
	e.query(backfill)
	recount()
	recount()
	assert.Equal(t, want, e.query(counts))

	// A re-poll enriched differently moves e3 to another country: the old
	// key of its hour drops out instead of keeping a count.
	e.query(strings.Replace(ins, "eventName)", "eventName, srcASCountryCode)", 1) + `('w', 's', 'e3', 0, '2026-05-01 11:01:00', '2026-05-01 12:00:00', 'login.succeeded', 'FR')`)
	recount()
	assert.Equal(t, "\t0\nFR\t1\n", e.query("SELECT country, sum(events) FROM rp_rollups.openai_audit_counts_1h FINAL WHERE hour = '2026-05-01 11:00:00' GROUP BY country ORDER BY country"))
	assert.Equal(t, "FR\t1\n", e.query("SELECT country, sum(events) FROM rp.openai_audit_counts WHERE hour = '2026-05-01 11:00:00' GROUP BY country ORDER BY country"))
}

// TestEngineDashboardChartsRun runs every chart query of
// auditpipe_dashboards (0003) the way ClickHouse's /dashboard page does,
// with its parameters, over a few events. The findings chart reads the
// detections' database, which the end-to-end test installs.
func TestEngineDashboardChartsRun(t *testing.T) {
	e := openEngine(t)
	e.migrate(schema.MigrationOptions{Database: "charts"})
	e.query(strings.Replace(insertRow, "ttl.", "charts.", 1) + `('w', 's', 'e1', 0, now() - 120, now(), 'login.failed'), ('w', 's', 'e2', 0, now() - 60, now(), 'api_key.created')`)
	var charts []struct{ Title, Query string }
	for _, line := range strings.Split(strings.TrimSpace(e.query("SELECT title AS Title, query AS Query FROM charts.auditpipe_dashboards WHERE dashboard = 'auditpipe' FORMAT JSONEachRow")), "\n") {
		var ch struct{ Title, Query string }
		require.NoError(t, json.Unmarshal([]byte(line), &ch))
		charts = append(charts, ch)
	}
	require.GreaterOrEqual(t, len(charts), 8)
	c, err := e.db.Acquire(context.Background())
	require.NoError(t, err)
	defer c.Release()
	for _, ch := range charts {
		title, q := ch.Title, ch.Query
		if strings.Contains(q, "_detections.") {
			continue
		}
		r, err := c.Query(q, "JSONColumnsWithMetadata", map[string]string{"rounding": "60", "seconds": "86400"})
		if assert.NoError(t, err, title) {
			r.Close()
		}
	}
}
