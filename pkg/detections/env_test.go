package detections_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	// use numbers the uses of the shared env, so that workspaces differ
	// between runs of a test (-count).
	use int
}

// ws names a workspace of this use of the env.
func (e *env) ws(name string) string { return fmt.Sprintf("%s-%d", name, e.use) }

// newEnv migrates a fresh database, installs the detections (refreshing
// hourly, so only RunNow refreshes during a test) and waits for their
// first refresh. Tests that change settings or the installation use their
// own; the others share one (sharedEnv).
func newEnv(t testing.TB) *env {
	t.Helper()
	e, err := setupEnv(chservertest.Start(t))
	if e != nil {
		t.Cleanup(func() {
			if err := e.close(); err != nil {
				t.Errorf("dropping the test databases: %v", err)
			}
		})
	}
	require.NoError(t, err)
	e.t = t
	return e
}

// shared is the env of the tests that only insert rows into workspaces of
// their own and read their findings: one install serves them all. TestMain
// drops it.
var shared struct {
	once sync.Once
	env  *env
	err  error
	uses atomic.Int64
}

// sharedEnv returns the shared env, bound to t.
func sharedEnv(t testing.TB) *env {
	t.Helper()
	shared.once.Do(func() { shared.env, shared.err = setupEnv(chservertest.Start(t)) })
	require.NoError(t, shared.err)
	e := *shared.env
	e.t, e.use = t, int(shared.uses.Add(1))
	return &e
}

// closeShared drops the shared env's databases, if it was created.
func closeShared() error {
	if shared.env == nil {
		return nil
	}
	return shared.env.close()
}

func setupEnv(u string) (*env, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "detections_test_" + hex.EncodeToString(b[:])
	opts := detections.Options{Database: db, Refresh: time.Hour}.WithDefaults()
	if err := chservertest.Exec(u, "CREATE DATABASE "+db); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.HTTP, Addr: []string{strings.TrimPrefix(u, "http://")},
		Auth: clickhouse.Auth{Database: db}, ReadTimeout: 2 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	e := &env{url: u, conn: conn, opts: opts, base: time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)}
	ctx := context.Background()
	migs, err := schema.Migrations(schema.MigrationOptions{Database: db})
	if err != nil {
		return e, err
	}
	for _, m := range migs {
		for _, s := range m.Statements {
			if err := conn.Exec(ctx, s); err != nil {
				return e, err
			}
		}
	}
	if _, err := detections.Install(ctx, conn, opts, nil); err != nil {
		return e, err
	}
	return e, detections.RunNow(ctx, conn, opts)
}

// close drops the env's databases (the detections first: their views read
// the other) and closes its connection.
func (e *env) close() error {
	return errors.Join(
		chservertest.Exec(e.url, "DROP DATABASE IF EXISTS "+e.opts.DetectionsDatabase+" SYNC"),
		chservertest.Exec(e.url, "DROP DATABASE IF EXISTS "+e.opts.Database+" SYNC"),
		e.conn.Close(),
	)
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

// set overrides a knob (also from a cleanup: t.Context is done by then).
func (e *env) set(rule, name, value string) {
	e.t.Helper()
	require.NoError(e.t, e.conn.Exec(context.Background(), fmt.Sprintf(
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
		if len(w.EventIDs)+len(g.EventIDs) > 0 { // posture findings have none
			require.Equal(t, w.EventIDs, g.EventIDs, "finding %d event ids", i)
		}
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
