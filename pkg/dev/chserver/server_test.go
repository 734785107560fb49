package chserver_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
)

// dataDir is the one engine data directory of this test binary (one per
// process); every test starts its own server on it and uses its own database.
var dataDir string

func TestMain(m *testing.M) {
	var err error
	dataDir, err = os.MkdirTemp("", "chserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dataDir)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startServer runs a server on dataDir until the test ends.
func startServer(t testing.TB, cfg chserver.Config) *chserver.Server {
	t.Helper()
	srv, _ := runServer(t, cfg)
	return srv
}

// runServer is startServer that also returns a func stopping the server
// early: it returns after the engine has closed.
func runServer(t testing.TB, cfg chserver.Config) (*chserver.Server, func()) {
	t.Helper()
	chservertest.RequireLibrary(t)
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dataDir
	srv, err := chserver.New(cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

// newDatabase creates a unique database and returns its name.
func newDatabase(t testing.TB, serverURL string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	httpQuery(t, serverURL, "CREATE DATABASE "+name)
	return name
}

// httpQuery POSTs q and returns the body, failing on a non-200 status.
func httpQuery(t testing.TB, serverURL, q string) string {
	t.Helper()
	resp, err := http.Post(serverURL+"/", "text/plain", strings.NewReader(q))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", q, body)
	return string(body)
}

// openConn opens clickhouse-go over HTTP against srv.
func openConn(t testing.TB, srv *chserver.Server, database string, comp *clickhouse.Compression, auth ...string) clickhouse.Conn {
	t.Helper()
	opts := &clickhouse.Options{
		Protocol:    clickhouse.HTTP,
		Addr:        []string{srv.Addr()},
		Auth:        clickhouse.Auth{Database: database},
		Compression: comp,
		DialTimeout: 5 * time.Second,
	}
	if len(auth) == 2 {
		opts.Auth.Username, opts.Auth.Password = auth[0], auth[1]
	}
	conn, err := clickhouse.Open(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestAuditLogsRoundTrip(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	conn := openConn(t, srv, db, nil)
	ctx := context.Background()
	require.NoError(t, conn.Ping(ctx))
	createAuditTable(t, conn, db)

	want := make([]auditRow, auditRows)
	for i := range want {
		want[i] = genRow(i)
	}
	insertAudit(t, ctx, conn, "openai_audit_logs", want)

	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM openai_audit_logs").Scan(&n))
	require.Equal(t, uint64(auditRows), n)

	rows, err := conn.Query(ctx, "SELECT * FROM openai_audit_logs ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	i := 0
	for rows.Next() {
		var got auditRow
		require.NoError(t, rows.Scan(got.ptrs()...))
		got.normalize()
		require.Less(t, i, len(want))
		if !assert.Equal(t, want[i], got, "row %d", i) {
			return
		}
		i++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, auditRows, i)
}

func TestCompressionModes(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	httpQuery(t, srv.URL(), "CREATE TABLE "+db+".c (k UInt64, s String, m Map(String, String)) ENGINE = MergeTree ORDER BY k")
	modes := []clickhouse.CompressionMethod{
		clickhouse.CompressionNone, clickhouse.CompressionGZIP, clickhouse.CompressionDeflate,
		clickhouse.CompressionBrotli, clickhouse.CompressionLZ4, clickhouse.CompressionZSTD,
	}
	for mi, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			conn := openConn(t, srv, db, &clickhouse.Compression{Method: m})
			ctx := context.Background()
			base := uint64(mi * 10_000)
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO c")
			require.NoError(t, err)
			for k := base; k < base+3000; k++ { // k crosses 0x0A0A = 2570
				require.NoError(t, batch.Append(k, fmt.Sprintf("v\n\n%d", k), map[string]string{"m": m.String()}))
			}
			require.NoError(t, batch.Send())

			var cnt, sum uint64
			require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(k) FROM c WHERE m['m'] = ?", m.String()).Scan(&cnt, &sum))
			assert.Equal(t, uint64(3000), cnt)
			assert.Equal(t, 3000*base+2999*3000/2, sum)

			rows, err := conn.Query(ctx, "SELECT k, s FROM c WHERE k >= ? AND k < ? ORDER BY k", base, base+3000)
			require.NoError(t, err)
			k := base
			for rows.Next() {
				var gk uint64
				var s string
				require.NoError(t, rows.Scan(&gk, &s))
				require.Equal(t, k, gk)
				require.Equal(t, fmt.Sprintf("v\n\n%d", k), s)
				k++
			}
			require.NoError(t, rows.Err())
			rows.Close()
			assert.Equal(t, base+3000, k)

			err = conn.Exec(ctx, "SELECT * FROM missing_table")
			var ex *clickhouse.Exception
			require.ErrorAs(t, err, &ex)
			assert.Equal(t, int32(60), ex.Code)
		})
	}
}

func TestDatabaseSQL(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	for _, dsnOpt := range []string{"", "?compress=lz4", "?compress=gzip"} {
		t.Run("dsn"+dsnOpt, func(t *testing.T) {
			sdb, err := sql.Open("clickhouse", srv.URL()+"/"+db+dsnOpt)
			require.NoError(t, err)
			defer sdb.Close()
			ctx := context.Background()
			_, err = sdb.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS s (a UInt32, b String, c Array(String)) ENGINE = MergeTree ORDER BY a")
			require.NoError(t, err)
			_, err = sdb.ExecContext(ctx, "TRUNCATE TABLE s")
			require.NoError(t, err)

			tx, err := sdb.BeginTx(ctx, nil)
			require.NoError(t, err)
			stmt, err := tx.PrepareContext(ctx, "INSERT INTO s")
			require.NoError(t, err)
			for i := range 500 {
				_, err := stmt.ExecContext(ctx, uint32(i), fmt.Sprint("b", i), []string{"x", fmt.Sprint(i)})
				require.NoError(t, err)
			}
			require.NoError(t, tx.Commit())

			var n uint64
			var last string
			require.NoError(t, sdb.QueryRowContext(ctx, "SELECT count(), max(b) FROM s").Scan(&n, &last))
			assert.Equal(t, uint64(500), n)
			assert.Equal(t, "b99", last)

			var c []string
			require.NoError(t, sdb.QueryRowContext(ctx, "SELECT c FROM s WHERE a = ?", 42).Scan(&c))
			assert.Equal(t, []string{"x", "42"}, c)

			_, err = sdb.ExecContext(ctx, "SELECT throwIf(1, 'boom')")
			var ex *clickhouse.Exception
			require.ErrorAs(t, err, &ex)
			assert.Equal(t, int32(395), ex.Code)
		})
	}
}

func TestParametersAndSettings(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 1}) // one connection: settings must not leak
	db := newDatabase(t, srv.URL())
	conn := openConn(t, srv, db, nil)
	ctx := context.Background()

	// Server-side {name:Type} parameters.
	pctx := clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"n": "20", "s": "a\\tb", "arr": "['x','y']"}))
	var sum uint64
	var s string
	var arr []string
	require.NoError(t, conn.QueryRow(pctx, "SELECT sum(number), {s:String}, {arr:Array(String)} FROM numbers({n:UInt32})").Scan(&sum, &s, &arr))
	assert.Equal(t, uint64(190), sum)
	assert.Equal(t, "a\tb", s)
	assert.Equal(t, []string{"x", "y"}, arr)

	// Client-side binding.
	var got string
	require.NoError(t, conn.QueryRow(ctx, "SELECT concat(?, '!')", "it's").Scan(&got))
	assert.Equal(t, "it's!", got)

	// Per-query settings apply to that query only.
	sctx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_threads": 1, "max_block_size": 1234}))
	var mt, mbs string
	require.NoError(t, conn.QueryRow(sctx, "SELECT toString(getSetting('max_threads')), toString(getSetting('max_block_size'))").Scan(&mt, &mbs))
	assert.Equal(t, "1", mt)
	assert.Equal(t, "1234", mbs)
	require.NoError(t, conn.QueryRow(ctx, "SELECT toString(getSetting('max_block_size'))").Scan(&mbs))
	assert.NotEqual(t, "1234", mbs)
	var async string
	require.NoError(t, conn.QueryRow(ctx, "SELECT toString(getSetting('async_insert'))").Scan(&async))
	assert.Equal(t, "false", async)

	// The database parameter selects the current database.
	var cur string
	require.NoError(t, conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&cur))
	assert.Equal(t, db, cur)

	// An unknown setting is an error and leaves the connection usable.
	err := conn.Exec(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"no_such_setting": 1})), "SELECT 1")
	var ex *clickhouse.Exception
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, int32(115), ex.Code)
	require.NoError(t, conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&cur))
	assert.Equal(t, db, cur)
}

func TestExceptions(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 1})
	db := newDatabase(t, srv.URL())
	conn := openConn(t, srv, db, nil)
	ctx := context.Background()
	tests := []struct {
		query string
		code  int32
	}{
		{"SELECT * FROM nope", 60},
		{"SELECT throwIf(1, 'boom')", 395},
		{"SELEC 1", 62},
		{"SELECT no_such_function()", 46},
		{"SELECT * FROM no_db.t", 81},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			rows, err := conn.Query(ctx, tc.query)
			if err == nil {
				rows.Close()
			}
			var ex *clickhouse.Exception
			require.ErrorAs(t, err, &ex)
			assert.Equal(t, tc.code, ex.Code)
			assert.NotEmpty(t, ex.Message)
		})
	}
	// An insert into a missing table fails with the engine's code.
	_, err := conn.PrepareBatch(ctx, "INSERT INTO missing")
	var ex *clickhouse.Exception
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, int32(60), ex.Code)
}

func TestConcurrentClients(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 3})
	db := newDatabase(t, srv.URL())
	httpQuery(t, srv.URL(), "CREATE TABLE "+db+".p (w UInt8, v UInt64) ENGINE = MergeTree ORDER BY (w, v)")
	const workers, per = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			conn := openConn(t, srv, db, &clickhouse.Compression{Method: clickhouse.CompressionLZ4})
			ctx := context.Background()
			for round := range 3 {
				batch, err := conn.PrepareBatch(ctx, "INSERT INTO p")
				if !assert.NoError(t, err) {
					return
				}
				for i := range per {
					_ = batch.Append(uint8(w), uint64(round*per+i))
				}
				if !assert.NoError(t, batch.Send()) {
					return
				}
				var n uint64
				assert.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM p WHERE w = ?", uint8(w)).Scan(&n))
				assert.Equal(t, uint64((round+1)*per), n)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, fmt.Sprintf("%d\n", workers*3*per), httpQuery(t, srv.URL(), "SELECT count() FROM "+db+".p"))
}

func TestRestartKeepsData(t *testing.T) {
	srv, stop := runServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	conn := openConn(t, srv, db, nil)
	ctx := context.Background()
	require.NoError(t, conn.Exec(ctx, "CREATE TABLE r (v UInt64, s String) ENGINE = MergeTree ORDER BY v"))
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO r")
	require.NoError(t, err)
	for i := range 5000 {
		require.NoError(t, batch.Append(uint64(i), "s\n\n"+fmt.Sprint(i)))
	}
	require.NoError(t, batch.Send())
	require.NoError(t, conn.Close())

	// Run returns after the engine closed, so the next New reboots it on the
	// same directory.
	stop()
	srv2 := startServer(t, chserver.Config{PoolSize: 1})
	conn = openConn(t, srv2, db, nil)
	var n, sum uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(v) FROM r").Scan(&n, &sum))
	assert.Equal(t, uint64(5000), n)
	assert.Equal(t, uint64(4999*5000/2), sum)
}

// TestNewlinePairs sends Native data full of 0x0A 0x0A pairs, which the
// engine would silently cut if it were inlined after FORMAT.
func TestNewlinePairs(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 1})
	db := newDatabase(t, srv.URL())
	conn := openConn(t, srv, db, nil)
	ctx := context.Background()
	require.NoError(t, conn.Exec(ctx, "CREATE TABLE nn (v UInt64, b String) ENGINE = MergeTree ORDER BY v"))
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO nn")
	require.NoError(t, err)
	const n = 20_000
	for i := range n {
		require.NoError(t, batch.Append(uint64(i), string([]byte{'\n', '\n', byte(i), 0, '\n'})))
	}
	require.NoError(t, batch.Send())
	var cnt, sum uint64
	var blen uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(v), sum(length(b)) FROM nn").Scan(&cnt, &sum, &blen))
	assert.Equal(t, uint64(n), cnt)
	assert.Equal(t, uint64(n*(n-1)/2), sum)
	assert.Equal(t, uint64(5*n), blen)
}

// TestRecoveredPanic is the signal trap: with the engine's own signal
// handlers installed a recovered nil dereference would hang the process.
func TestRecoveredPanic(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 1})
	var p *struct{ n int }
	recovered := func() (r any) {
		defer func() { r = recover() }()
		p.n++
		return nil
	}()
	require.NotNil(t, recovered)
	assert.Equal(t, "1\n", httpQuery(t, srv.URL(), "SELECT 1"))
}

func TestCurl(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 2})
	db := newDatabase(t, srv.URL())
	u := srv.URL()
	get := func(path string) (int, http.Header, string) {
		resp, err := http.Get(u + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(b)
	}
	post := func(path, body string) (int, http.Header, string) {
		resp, err := http.Post(u+path, "text/plain", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(b)
	}
	q := url.QueryEscape

	code, _, body := get("/ping")
	assert.Equal(t, 200, code)
	assert.Equal(t, "Ok.\n", body)
	_, _, body = get("/")
	assert.Equal(t, "Ok.\n", body)
	code, _, _ = get("/nope")
	assert.Equal(t, 404, code)

	_, _, body = get("/?query=" + q("SELECT version()"))
	assert.True(t, strings.HasPrefix(body, "26."), body)

	_, _, _ = post("/?database="+db, "CREATE TABLE t (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
	code, h, body := post("/?database="+db+"&query="+q("INSERT INTO t FORMAT TSV"), "1\tone\n2\ttwo\\nlines\n")
	require.Equal(t, 200, code, body)
	assert.Contains(t, h.Get("X-ClickHouse-Summary"), `"written_rows":"2"`)
	code, _, body = post("/?database="+db+"&query="+q("INSERT INTO t FORMAT JSONEachRow"), `{"a":3,"s":"three"}`+"\n"+`{"a":4,"s":"fo\nur"}`)
	require.Equal(t, 200, code, body)
	code, _, body = post("/?database="+db, "INSERT INTO t FORMAT CSV\n5,\"five\"\n")
	require.Equal(t, 200, code, body)
	code, _, body = post("/?database="+db, "INSERT INTO t VALUES (6, 'six')")
	require.Equal(t, 200, code, body)

	code, h, body = get("/?database=" + db + "&query=" + q("SELECT * FROM t ORDER BY a FORMAT JSONEachRow"))
	require.Equal(t, 200, code, body)
	assert.Equal(t, `{"a":1,"s":"one"}
{"a":2,"s":"two\nlines"}
{"a":3,"s":"three"}
{"a":4,"s":"fo\nur"}
{"a":5,"s":"five"}
{"a":6,"s":"six"}
`, body)
	assert.Contains(t, h.Get("Content-Type"), "ndjson")

	_, _, body = get("/?database=" + db + "&default_format=CSV&query=" + q("SELECT a, s FROM t WHERE a < 2"))
	assert.Equal(t, "1,\"one\"\n", body)
	_, _, body = get("/?query=" + q("SELECT {x:UInt8} * 2, {s:String}") + "&param_x=21&param_s=" + q("hi"))
	assert.Equal(t, "42\thi\n", body)
	_, _, body = get("/?max_threads=3&query=" + q("SELECT getSetting('max_threads')"))
	assert.Equal(t, "3\n", body)

	code, h, body = get("/?query_id=my-query&query=" + q("SELECT * FROM missing"))
	assert.Equal(t, 404, code)
	assert.Equal(t, "60", h.Get("X-ClickHouse-Exception-Code"))
	assert.Equal(t, "my-query", h.Get("X-ClickHouse-Query-Id"))
	assert.True(t, strings.HasPrefix(body, "Code: 60. DB::Exception: "), body)
	code, h, _ = post("/", "SELEC 1")
	assert.Equal(t, 400, code)
	assert.Equal(t, "62", h.Get("X-ClickHouse-Exception-Code"))
	code, _, _ = post("/?query="+q("INSERT INTO "+db+".t FORMAT TSV"), "not-a-number\tx\n")
	assert.Equal(t, 400, code)
}

func TestHTTPCompressionCurl(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 1})
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL()+"/?query="+url.QueryEscape("SELECT number FROM numbers(5)"), nil)
			require.NoError(t, err)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := http.DefaultTransport.RoundTrip(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, enc, resp.Header.Get("Content-Encoding"))
		})
	}
}

func TestAuth(t *testing.T) {
	srv := startServer(t, chserver.Config{PoolSize: 1, User: "alice", Password: "s3cret"})
	q := "/?query=" + url.QueryEscape("SELECT 1")
	tests := []struct {
		name string
		set  func(*http.Request)
		code int
	}{
		{"none", func(*http.Request) {}, 401},
		{"basic", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, 200},
		{"basic wrong", func(r *http.Request) { r.SetBasicAuth("alice", "nope") }, 401},
		{"headers", func(r *http.Request) {
			r.Header.Set("X-ClickHouse-User", "alice")
			r.Header.Set("X-ClickHouse-Key", "s3cret")
		}, 200},
		{"params", func(r *http.Request) { r.URL.RawQuery += "&user=alice&password=s3cret" }, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL()+q, nil)
			require.NoError(t, err)
			tc.set(req)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.code, resp.StatusCode)
			if tc.code == 401 {
				assert.Equal(t, "516", resp.Header.Get("X-ClickHouse-Exception-Code"))
			}
		})
	}
	conn := openConn(t, srv, "default", nil, "alice", "s3cret")
	require.NoError(t, conn.Ping(context.Background()))
	bad := openConn(t, srv, "default", nil, "alice", "wrong")
	err := bad.Ping(context.Background())
	var ex *clickhouse.Exception
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, int32(516), ex.Code)
}

func TestConfigValidate(t *testing.T) {
	_, err := chserver.New(chserver.Config{}, nil)
	require.ErrorContains(t, err, "DataDir is required")
	_, err = chserver.New(chserver.Config{DataDir: "x", PoolSize: -1}, nil)
	require.ErrorContains(t, err, "PoolSize")
}
