package chserver_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/chdb"
	"github.com/auditpipe/auditpipe/pkg/chserver"
)

const benchRows = 100_000

// bodyCapture records the body of the last INSERT request it forwards.
type bodyCapture struct {
	next http.Handler
	mu   sync.Mutex
	body []byte
}

func (c *bodyCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(strings.ToUpper(r.URL.Query().Get("query")), "INSERT") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.body = b
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	c.next.ServeHTTP(w, r)
}

// BenchmarkInsert inserts 100k openai_audit_logs rows per op, through
// clickhouse-go over HTTP ("http") and, for the same Native bytes, straight
// into the engine's streaming insert ("engine"). The ratio of the two rows/s
// figures is the cost of the client plus the server.
func BenchmarkInsert(b *testing.B) {
	srv := startServer(b, chserver.Config{PoolSize: 2})
	db := newDatabase(b, srv.URL())
	capture := &bodyCapture{next: srv}
	hs := httptest.NewServer(capture)
	defer hs.Close()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol: clickhouse.HTTP,
		Addr:     []string{strings.TrimPrefix(hs.URL, "http://")},
		Auth:     clickhouse.Auth{Database: db},
	})
	require.NoError(b, err)
	defer conn.Close()
	createAuditTable(b, conn, db)
	rows := make([]auditRow, benchRows)
	for i := range rows {
		rows[i] = genRow(i)
	}
	ctx := context.Background()

	b.Run("http", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			insertAudit(b, ctx, conn, "openai_audit_logs", rows)
		}
		report(b, start, len(capture.body))
	})

	if capture.body == nil { // only -bench=Insert/engine: capture one insert
		insertAudit(b, ctx, conn, "openai_audit_logs", rows)
	}
	native := capture.body
	b.Run("engine", func(b *testing.B) {
		edb, err := chdb.Open(chdb.Options{Path: dataDir, PoolSize: 1})
		require.NoError(b, err)
		defer func() { require.NoError(b, edb.Close(ctx)) }()
		c, err := edb.Acquire(ctx)
		require.NoError(b, err)
		defer c.Release()
		start := time.Now()
		for b.Loop() {
			ins, err := c.Insert("INSERT INTO "+db+".openai_audit_logs", "Native", nil)
			require.NoError(b, err)
			for p := native; len(p) > 0; {
				n := min(len(p), 1<<20)
				_, err := ins.Write(p[:n])
				require.NoError(b, err)
				p = p[n:]
			}
			st, err := ins.Done()
			require.NoError(b, err)
			ins.Close()
			require.Equal(b, uint64(benchRows), st.RowsWritten)
		}
		report(b, start, len(native))
	})
}

func report(b *testing.B, start time.Time, nativeBytes int) {
	sec := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(benchRows/sec, "rows/s")
	b.ReportMetric(float64(nativeBytes)/sec/1e6, "MB/s")
	b.ReportMetric(float64(nativeBytes)/1e6, "native-MB/op")
}
