package chserver_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
)

// boundedQuery is httpQuery with a deadline: the engine traps these tests
// guard against hang inside a C call, which only a client timeout can see.
func boundedQuery(t *testing.T, serverURL, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+"/", strings.NewReader(q))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "%s (a timeout here means the engine hangs)", q)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, q)
}

// TestRejectedInsertThenDrop: ALTER TABLE ADD CONSTRAINT, an insert the
// constraint rejects, then DROP DATABASE SYNC on another pooled connection
// (the failed insert used to keep the table referenced, and the DROP hung).
func TestRejectedInsertThenDrop(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	conn := openConn(t, srv, db, &clickhouse.Compression{Method: clickhouse.CompressionLZ4})
	ctx := context.Background()
	createAuditTable(t, conn, db)
	boundedQuery(t, srv.URL(), "ALTER TABLE "+db+".openai_audit_logs ADD CONSTRAINT no_poison CHECK eventName != 'poison'")

	good, bad := genRow(1), genRow(2)
	bad.eventName = "poison"
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO openai_audit_logs")
	require.NoError(t, err)
	require.NoError(t, batch.Append(good.values()...))
	require.NoError(t, batch.Append(bad.values()...))
	err = batch.Send()
	var ex *clickhouse.Exception
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, int32(469), ex.Code) // VIOLATED_CONSTRAINT

	// A malformed body fails while parsing.
	resp, err := http.Post(srv.URL()+"/?query="+strings.ReplaceAll("INSERT INTO "+db+".openai_audit_logs FORMAT JSONEachRow", " ", "+"),
		"application/x-ndjson", strings.NewReader(`{"id": [1, 2`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusOK, resp.StatusCode)

	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM openai_audit_logs").Scan(&n))
	assert.Zero(t, n)
	boundedQuery(t, srv.URL(), "DROP DATABASE "+db+" SYNC")
}

// TestMapColumns reads Map and Array(Tuple(Map, ...)) columns back through
// every client path: clickhouse-go Query/Scan and Select-all, database/sql,
// and ClickHouse's JSONEachRow over plain HTTP.
func TestMapColumns(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	const n = 50
	want := make([]auditRow, n)
	for i := range want {
		want[i] = genRow(i)
	}
	setup := openConn(t, srv, db, nil)
	createAuditTable(t, setup, db)
	insertAudit(t, context.Background(), setup, "openai_audit_logs", want)

	for _, m := range []clickhouse.CompressionMethod{clickhouse.CompressionNone, clickhouse.CompressionLZ4, clickhouse.CompressionGZIP} {
		t.Run("native/"+m.String(), func(t *testing.T) {
			conn := openConn(t, srv, db, &clickhouse.Compression{Method: m})
			ctx := context.Background()
			rows, err := conn.Query(ctx, "SELECT id, actor, tags, enrichments FROM openai_audit_logs ORDER BY id")
			require.NoError(t, err)
			i := 0
			for rows.Next() {
				var id string
				var actor, tags map[string]string
				var enr []map[string]any
				require.NoError(t, rows.Scan(&id, &actor, &tags, &enr))
				r := auditRow{actor: actor, tags: tags, enrichments: enr}
				r.normalize()
				require.Less(t, i, n)
				assert.Equal(t, want[i].id, id)
				assert.Equal(t, want[i].actor, r.actor, "row %d", i)
				assert.Equal(t, want[i].tags, r.tags, "row %d", i)
				assert.Equal(t, want[i].enrichments, r.enrichments, "row %d", i)
				i++
			}
			require.NoError(t, rows.Err())
			rows.Close()
			assert.Equal(t, n, i)

			rows, err = conn.Query(ctx, "SELECT * FROM openai_audit_logs ORDER BY id")
			require.NoError(t, err)
			i = 0
			for rows.Next() {
				var got auditRow
				require.NoError(t, rows.Scan(got.ptrs()...))
				got.normalize()
				assert.Equal(t, want[i], got, "row %d", i)
				i++
			}
			require.NoError(t, rows.Err())
			rows.Close()
			assert.Equal(t, n, i)
		})
	}

	t.Run("database/sql", func(t *testing.T) {
		sdb, err := sql.Open("clickhouse", srv.URL()+"/"+db+"?compress=lz4")
		require.NoError(t, err)
		defer sdb.Close()
		rows, err := sdb.QueryContext(context.Background(), "SELECT actor, tags, enrichments FROM openai_audit_logs ORDER BY id")
		require.NoError(t, err)
		defer rows.Close()
		i := 0
		for rows.Next() {
			var r auditRow
			require.NoError(t, rows.Scan(&r.actor, &r.tags, &r.enrichments))
			r.normalize()
			require.Less(t, i, n)
			assert.Equal(t, want[i].actor, r.actor, "row %d", i)
			assert.Equal(t, want[i].tags, r.tags, "row %d", i)
			assert.Equal(t, want[i].enrichments, r.enrichments, "row %d", i)
			i++
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, n, i)
	})

	t.Run("JSONEachRow", func(t *testing.T) {
		body := httpQuery(t, srv.URL(), "SELECT actor, tags, enrichments FROM "+db+".openai_audit_logs ORDER BY id FORMAT JSONEachRow")
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		require.Len(t, lines, n)
		for i, line := range lines {
			var got struct {
				Actor, Tags map[string]string
				Enrichments []map[string]any
			}
			require.NoError(t, json.Unmarshal([]byte(line), &got), line)
			assert.Equal(t, want[i].actor, got.Actor, "row %d", i)
			assert.Equal(t, want[i].tags, got.Tags, "row %d", i)
			assert.Len(t, got.Enrichments, len(want[i].enrichments), "row %d", i)
		}
	})
}
