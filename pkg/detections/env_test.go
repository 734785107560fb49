package detections_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// env is a database with openai_audit_logs and the detections installed
// next to it, on the shared embedded ClickHouse.
type env struct {
	t    testing.TB
	url  string
	conn driver.Conn
	opts detections.Options
	// base is the reference eventTime of test events: the start of the
	// hour two hours ago, so a case's events share a 30-minute interval.
	base time.Time
}

// newEnv migrates a fresh database, installs the detections (refreshing
// hourly, so only RunNow refreshes during a test) and waits for their
// first refresh.
func newEnv(t testing.TB) *env {
	t.Helper()
	u, db := chservertest.NewDatabase(t)
	opts := detections.Options{Database: db, Refresh: time.Hour}.WithDefaults()
	t.Cleanup(func() {
		if err := chservertest.Exec(u, "DROP DATABASE IF EXISTS "+db+"_detections SYNC"); err != nil {
			t.Errorf("dropping the detections database: %v", err)
		}
	})
	conn := openConn(t, u, db)
	migs, err := schema.Migrations(schema.MigrationOptions{Database: db})
	require.NoError(t, err)
	for _, m := range migs {
		for _, s := range m.Statements {
			require.NoError(t, conn.Exec(t.Context(), s))
		}
	}
	_, err = detections.Install(t.Context(), conn, opts, nil)
	require.NoError(t, err)
	require.NoError(t, detections.RunNow(t.Context(), conn, opts))
	return &env{t: t, url: u, conn: conn, opts: opts, base: time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)}
}

// openConn opens a clickhouse-go HTTP connection to database db.
func openConn(t testing.TB, u, db string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.HTTP, Addr: []string{strings.TrimPrefix(u, "http://")},
		Auth: clickhouse.Auth{Database: db}, ReadTimeout: 2 * time.Minute,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// event is one audit-log row, with only what the rules read.
type event struct {
	ID   string        // eventID
	Name string        // eventName
	At   time.Duration // eventTime relative to env.base
	// Received is how long ago the row was received (default: now).
	Received time.Duration
	// A session actor: Email (and UserID) with IP, Country, Lat/Lon.
	Email, UserID   string
	IP, Country     string
	Lat, Lon        float64
	KeyID, KeyType  string // an api_key actor
	ServiceAccount  string // the key's service account
	ProjectID       string
	Payload         map[string]any // the object under the key named after Name
	NoActor         bool
	ExtraRawMembers map[string]any
}

// insert writes events of workspace ws (source "src") as rows.
func (e *env) insert(ws string, evs ...event) {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO `%s`.openai_audit_logs FORMAT JSONEachRow\n", e.opts.Database)
	now := time.Now().UTC()
	for _, ev := range evs {
		line, err := json.Marshal(e.row(ws, ev, now))
		require.NoError(e.t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	require.NoError(e.t, chservertest.Exec(e.url, b.String()))
}

func (e *env) row(ws string, ev event, now time.Time) map[string]any {
	e.t.Helper()
	require.NotEmpty(e.t, ev.ID, "event id")
	at := e.base.Add(ev.At)
	raw := map[string]any{"object": "organization.audit_log", "id": ev.ID, "type": ev.Name, "effective_at": at.Unix()}
	if ev.Payload != nil {
		raw[ev.Name] = ev.Payload
	}
	rawLog, err := json.Marshal(raw)
	require.NoError(e.t, err)
	sum := sha256.Sum256([]byte("src/" + ev.ID))
	r := map[string]any{
		"workspaceID": ws, "sourceID": "src", "sourceType": "openai",
		"receivedAt": now.Add(-ev.Received).Unix(), "id": hex.EncodeToString(sum[:16]),
		"eventTime": at.Unix(), "eventName": ev.Name, "eventID": ev.ID, "rawLog": string(rawLog),
		"eventType": ev.Name[:strings.LastIndexByte(ev.Name+".", '.')], "serviceName": "openai",
		"projectID": ev.ProjectID,
	}
	switch {
	case ev.NoActor:
	case ev.KeyID != "":
		r["actorType"], r["apiKeyID"], r["apiKeyType"] = "api_key", ev.KeyID, ev.KeyType
		r["actorUserID"], r["actorUserEmail"], r["serviceAccountID"] = ev.UserID, ev.Email, ev.ServiceAccount
	default:
		r["actorType"], r["actorUserID"], r["actorUserEmail"] = "session", ev.UserID, ev.Email
		r["srcIP"], r["actorIP"], r["srcASCountryCode"] = ev.IP, ev.IP, ev.Country
		r["srcLatitude"], r["srcLongitude"] = ev.Lat, ev.Lon
	}
	return r
}

// run refreshes the views of rules and waits for them.
func (e *env) run(rules ...string) {
	e.t.Helper()
	require.NoError(e.t, detections.RunNow(e.t.Context(), e.conn, e.opts, rules...))
}

// set overrides a knob.
func (e *env) set(rule, name, value string) {
	e.t.Helper()
	require.NoError(e.t, e.conn.Exec(e.t.Context(), fmt.Sprintf(
		"INSERT INTO `%s`.detection_settings (rule, name, value) VALUES ('%s', '%s', '%s')", e.opts.DetectionsDatabase, rule, name, value)))
}

// finding is what the tests compare of one row of the findings table.
type finding struct {
	Severity string
	Entity   string
	EventIDs []string
	// Details, when set, must be a subset of the finding's details.
	Details map[string]string
	// WindowStart, when set, is compared with the finding's.
	WindowStart time.Time
}

// findings returns the findings of rule in workspace ws (after FINAL),
// ordered by entity and window, and checks that the table holds no
// unmerged duplicate of any of them.
func (e *env) findings(rule, ws string) []finding {
	e.t.Helper()
	q := fmt.Sprintf("SELECT toString(severity), entity, eventIDs, details, windowStart FROM `%s`.openai_audit_detections %%s WHERE rule = ? AND workspaceID = ? ORDER BY entity, windowStart",
		e.opts.DetectionsDatabase)
	read := func(final string) []finding {
		rows, err := e.conn.Query(e.t.Context(), fmt.Sprintf(q, final), rule, ws)
		require.NoError(e.t, err)
		defer rows.Close()
		var out []finding
		for rows.Next() {
			var f finding
			require.NoError(e.t, rows.Scan(&f.Severity, &f.Entity, &f.EventIDs, &f.Details, &f.WindowStart))
			f.WindowStart = f.WindowStart.UTC()
			out = append(out, f)
		}
		require.NoError(e.t, rows.Err())
		return out
	}
	final, raw := read("FINAL"), read("")
	require.Len(e.t, raw, len(final), "rows without FINAL = rows with FINAL: no duplicate finding")
	return final
}

// requireFindings compares got with want on severity, entity and event ids
// (and details and windowStart where want sets them).
func requireFindings(t *testing.T, want, got []finding) {
	t.Helper()
	require.Len(t, got, len(want), "findings: %+v", got)
	for i := range want {
		w, g := want[i], got[i]
		require.Equal(t, w.Severity, g.Severity, "finding %d severity", i)
		require.Equal(t, w.Entity, g.Entity, "finding %d entity", i)
		require.Equal(t, w.EventIDs, g.EventIDs, "finding %d event ids", i)
		for k, v := range w.Details {
			require.Equal(t, v, g.Details[k], "finding %d details[%s] (all: %v)", i, k, g.Details)
		}
		if !w.WindowStart.IsZero() {
			require.Equal(t, w.WindowStart, g.WindowStart, "finding %d windowStart", i)
		}
	}
}

// ids returns prefix-1 … prefix-n.
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return out
}

func concat(lists ...[]string) []string { return slices.Concat(lists...) }

func itoa(i int) string { return fmt.Sprint(i) }
