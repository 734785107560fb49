package detections_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// stuffing is a credential-stuffing burst: n failures from n IPs.
func stuffing(prefix string, n int, at time.Duration) []event {
	return failures(prefix, "victim@example.com", n, at, time.Minute, distinctIPs)
}

func TestOverlappingRefreshesAddNoDuplicate(t *testing.T) {
	e := sharedEnv(t)
	e.insert(e.ws("overlap"), stuffing("a", 6, 0)...)
	want := []finding{{Severity: "HIGH", Entity: "victim@example.com", EventIDs: ids("a", 6), WindowStart: e.base}}
	for range 3 {
		e.run("credential_stuffing")
		requireFindings(t, want, e.findings("credential_stuffing", e.ws("overlap")))
	}
	// A late failure of the same burst, and the other rules over the same
	// events, twice: still one finding, kept as first detected.
	e.insert(e.ws("overlap"), stuffing("late", 1, 10*time.Minute)...)
	e.run()
	e.run()
	requireFindings(t, want, e.findings("credential_stuffing", e.ws("overlap")))
	// The next interval is another finding.
	e.insert(e.ws("overlap"), stuffing("b", 5, 45*time.Minute)...)
	e.run("credential_stuffing")
	requireFindings(t, append(want, finding{Severity: "HIGH", Entity: "victim@example.com", EventIDs: ids("b", 5), WindowStart: e.base.Add(30 * time.Minute)}),
		e.findings("credential_stuffing", e.ws("overlap")))
}

func TestSettingsChangeTheOutcome(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		name  string
		set   [][3]string // rule, knob, value
		want  bool
		error string
	}{
		{name: "defaults: 3 IPs are not enough", want: false},
		{name: "min_ips lowered to 3", set: [][3]string{{"credential_stuffing", "min_ips", "3"}}, want: true},
		{name: "disabled", set: [][3]string{{"credential_stuffing", "enabled", "false"}}, want: false},
		{name: "enabled again", set: [][3]string{{"credential_stuffing", "enabled", "true"}}, want: true},
		{name: "back to the default threshold", set: [][3]string{{"credential_stuffing", "min_ips", ""}}, want: false},
		{name: "window shortened below the burst", set: [][3]string{{"credential_stuffing", "min_ips", "3"}, {"credential_stuffing", "window_minutes", "1"}}, want: false},
		{name: "an invalid value fails the refresh", set: [][3]string{{"credential_stuffing", "min_ips", "three"}}, error: "three"},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			for _, kv := range s.set {
				e.set(kv[0], kv[1], kv[2])
			}
			ws := fmt.Sprintf("settings-%d", i)
			e.insert(ws, stuffing("s", 3, 0)...)
			err := detections.RunNow(t.Context(), e.conn, e.opts, "credential_stuffing")
			if s.error != "" {
				require.ErrorContains(t, err, s.error)
				return
			}
			require.NoError(t, err)
			var want []finding
			if s.want {
				want = []finding{{Severity: "HIGH", Entity: "victim@example.com", EventIDs: ids("s", 3)}}
			}
			requireFindings(t, want, e.findings("credential_stuffing", ws))
		})
	}
}

func TestParametersView(t *testing.T) {
	e := newEnv(t)
	e.set("mass_deletion", "min_deletions", "9")
	e.set("mass_deletion", "min_deletions", "12")
	e.set("nope", "min_ips", "1")
	got := map[string]string{}
	rows, err := e.conn.Query(t.Context(), fmt.Sprintf("SELECT rule || '/' || name, value, overridden FROM `%s`.detection_parameters WHERE rule IN ('mass_deletion', 'nope')", e.opts.DetectionsDatabase))
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var k, v string
		var overridden bool
		require.NoError(t, rows.Scan(&k, &v, &overridden))
		got[k] = fmt.Sprintf("%s %v", v, overridden)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]string{
		"mass_deletion/enabled":          "true false",
		"mass_deletion/lookback_minutes": "120 false",
		"mass_deletion/min_deletions":    "12 true",
		"mass_deletion/window_minutes":   "10 false",
		"mass_deletion/event_names":      "user.deleted,api_key.deleted,project.deleted,project.archived,service_account.deleted,tenant.user.removed,tenant.service_account.deleted false",
	}, got, "the newest override wins; overrides of unknown rules are not parameters")
}

func TestInstallIsIdempotentAndReconciles(t *testing.T) {
	e := newEnv(t)
	rules, err := detections.Rules()
	require.NoError(t, err)

	rep, err := detections.Install(t.Context(), e.conn, e.opts, nil)
	require.NoError(t, err)
	assert.Equal(t, detections.Report{Unchanged: len(rules)}, rep, "a second install changes nothing")

	// A dropped view comes back; an override naming no knob is reported;
	// a view of a retired rule goes.
	require.NoError(t, e.conn.Exec(t.Context(), fmt.Sprintf("DROP VIEW `%s`.detect_mass_deletion", e.opts.DetectionsDatabase)))
	e.set("mass_deletion", "min_deletion", "3")
	require.NoError(t, e.conn.Exec(t.Context(), fmt.Sprintf(
		"CREATE MATERIALIZED VIEW `%[1]s`.detect_retired REFRESH EVERY 1 HOUR APPEND TO `%[1]s`.openai_audit_detections AS SELECT 'retired' AS rule", e.opts.DetectionsDatabase)))
	require.NoError(t, e.conn.Exec(t.Context(), fmt.Sprintf("INSERT INTO `%s`.detection_rules (rule, checksum) VALUES ('retired', 'x')", e.opts.DetectionsDatabase)))
	rep, err = detections.Install(t.Context(), e.conn, e.opts, nil)
	require.NoError(t, err)
	assert.Equal(t, detections.Report{
		Installed: []string{"mass_deletion"}, Unchanged: len(rules) - 1, Removed: []string{"retired"},
		UnknownSettings: []string{"mass_deletion/min_deletion"},
	}, rep)

	// Another refresh interval reinstalls every view.
	opts := e.opts
	opts.Refresh = 30 * time.Minute
	rep, err = detections.Install(t.Context(), e.conn, opts, nil)
	require.NoError(t, err)
	assert.Len(t, rep.Installed, len(rules))
	var views []string
	rows, err := e.conn.Query(t.Context(), "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView' ORDER BY name", e.opts.DetectionsDatabase)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var v string
		require.NoError(t, rows.Scan(&v))
		views = append(views, v)
	}
	require.NoError(t, rows.Err())
	var want []string
	for _, r := range rules {
		want = append(want, detections.ViewName(r.ID))
	}
	assert.Equal(t, want, views)

	// The metadata users join findings with.
	var title, technique, severity string
	require.NoError(t, e.conn.QueryRow(t.Context(), fmt.Sprintf(
		"SELECT title, mitreTechniqueID, toString(severity) FROM `%s`.detection_rules FINAL WHERE rule = 'ip_allowlist_changed'", e.opts.DetectionsDatabase)).Scan(&title, &technique, &severity))
	assert.Equal(t, []string{"IP allowlist changed", "T1562.007", "CRITICAL"}, []string{title, technique, severity})
}

func TestInstallRefusesADatabaseWithoutRefreshableViews(t *testing.T) {
	u, db := chservertest.NewDatabase(t)
	other := db + "_mem"
	require.NoError(t, chservertest.Exec(u, "CREATE DATABASE "+other+" ENGINE = Memory"))
	t.Cleanup(func() { _ = chservertest.Exec(u, "DROP DATABASE IF EXISTS "+other) })
	conn := openConn(t, u, db)
	_, err := detections.Install(t.Context(), conn, detections.Options{Database: db, DetectionsDatabase: other}, nil)
	require.ErrorContains(t, err, "database "+other+" has engine Memory, but refreshable materialized views need Atomic or Replicated")
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		opts detections.Options
		want string
	}{
		{detections.Options{}, ""},
		{detections.Options{Database: "audit", Cluster: "prod", Refresh: time.Minute}, ""},
		{detections.Options{Database: "a;b"}, `database: "a;b" is not a plain identifier`},
		{detections.Options{Database: "a", DetectionsDatabase: "a"}, "must differ from the database holding openai_audit_logs"},
		{detections.Options{Refresh: 1500 * time.Millisecond}, "refresh: 1.5s: want whole seconds, at least 1s"},
		{detections.Options{Refresh: -time.Second}, "refresh: -1s"},
		{detections.Options{Cluster: "a`b"}, "cluster:"},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		if tt.want == "" {
			assert.NoError(t, err, "%+v", tt.opts)
		} else {
			assert.ErrorContains(t, err, tt.want, "%+v", tt.opts)
		}
	}
}

func TestClusterRendering(t *testing.T) {
	opts := detections.Options{Database: "audit", Cluster: "prod", Refresh: time.Minute}
	stmts, err := opts.Statements()
	require.NoError(t, err)
	assert.Equal(t, "CREATE DATABASE IF NOT EXISTS `audit_detections` ON CLUSTER `prod` ENGINE = Replicated('/clickhouse/auditpipe/databases/audit_detections', 'all', '{replica}')", stmts[0])
	joined := strings.Join(stmts, "\n")
	assert.Contains(t, joined, "ENGINE = ReplicatedReplacingMergeTree()\nPARTITION BY toYYYYMM(windowStart)")
	assert.Contains(t, joined, "ENGINE = ReplicatedReplacingMergeTree(updatedAt)")
	assert.Contains(t, joined, "FROM `audit`.`openai_audit_logs` FINAL")
	assert.NotContains(t, joined, "ON CLUSTER `prod` (", "DDL inside a Replicated database is replicated without ON CLUSTER")
}

func TestConfig(t *testing.T) {
	c := detections.DefaultConfig()
	require.NoError(t, c.Validate())
	assert.Equal(t, detections.Options{Database: "audit", Cluster: "c", ReplicaName: "r", Refresh: 5 * time.Minute}, c.Options("audit", "c", "r"))
	c.Database, c.Refresh = "a-b", 0
	err := c.Validate()
	require.ErrorContains(t, err, `database: "a-b" is not a plain identifier`)
	require.ErrorContains(t, err, "refresh: 0s: want whole seconds")
}

func TestConcurrentInstalls(t *testing.T) {
	u, db := chservertest.NewDatabase(t)
	opts := detections.Options{Database: db, Refresh: time.Hour}.WithDefaults()
	t.Cleanup(func() { _ = chservertest.Exec(u, "DROP DATABASE IF EXISTS "+opts.DetectionsDatabase+" SYNC") })
	conn := openConn(t, u, db)
	migs, err := schema.Migrations(schema.MigrationOptions{Database: db})
	require.NoError(t, err)
	for _, m := range migs {
		for _, s := range m.Statements {
			require.NoError(t, conn.Exec(t.Context(), s))
		}
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := detections.Install(t.Context(), conn, opts, nil)
			errs <- err
		}()
	}
	for range 3 {
		assert.NoError(t, <-errs)
	}
	rep, err := detections.Install(t.Context(), conn, opts, nil)
	require.NoError(t, err)
	rules, err := detections.Rules()
	require.NoError(t, err)
	assert.Equal(t, detections.Report{Unchanged: len(rules)}, rep, "the concurrent installs left a complete, current installation")
}
