package chserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
)

const benchRows = 100_000

// bodyCapture records the body of the next INSERT request it forwards after
// arm; otherwise it passes requests through untouched.
type bodyCapture struct {
	next  http.Handler
	mu    sync.Mutex
	armed bool
	body  []byte
}

func (c *bodyCapture) arm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.body = true, nil
}

func (c *bodyCapture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	armed := c.armed
	c.mu.Unlock()
	if armed && strings.HasPrefix(strings.ToUpper(r.URL.Query().Get("query")), "INSERT") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.armed, c.body = false, b
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	c.next.ServeHTTP(w, r)
}

func (c *bodyCapture) last() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.body
}

// BenchmarkInsert inserts 100k openai_audit_logs rows per op into an empty
// table (the table is truncated between ops, untimed):
//
//   - http/rows: clickhouse-go PrepareBatch, row-wise Append([]any), Send
//     over HTTP through the server;
//   - http/columns: the same with column-wise Append of typed slices, as
//     the loader does (loader/internal/chwriter);
//   - http/columns-2clients: two clients inserting 50k rows each at once;
//   - engine: the Native bytes of one http insert straight into the engine's
//     streaming insert (no client, no HTTP, no Go-side encoding).
//
// Each also runs with optimize_on_insert=0 ("/no-optimize"), a per-query
// setting: ReplacingMergeTree then skips collapsing equal sorting keys
// within the inserted block (merges still do), which is about half of the
// engine's insert work for this table.
//
// Every op uses its own insert_deduplication_token, as the loader does, so
// no op is deduplicated against an earlier one.
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
	// The Native body of the 100k rows, for the engine runs and MB/s.
	capture.arm()
	insertAuditCtx(b, ctx, conn, rows, appendColumns)
	native := capture.last()
	require.NotEmpty(b, native)
	truncate := func(b *testing.B) {
		b.StopTimer()
		require.NoError(b, conn.Exec(ctx, "TRUNCATE TABLE openai_audit_logs"))
		b.StartTimer()
	}
	token := 0
	settings := func(noOptimize bool) clickhouse.Settings {
		token++
		s := clickhouse.Settings{"insert_deduplication_token": fmt.Sprintf("bench-%d", token)}
		if noOptimize {
			s["optimize_on_insert"] = 0
		}
		return s
	}

	for _, v := range []struct {
		name       string
		noOptimize bool
	}{{"", false}, {"/no-optimize", true}} {
		b.Run("http/rows"+v.name, func(b *testing.B) {
			for b.Loop() {
				truncate(b)
				insertAuditCtx(b, clickhouse.Context(ctx, clickhouse.WithSettings(settings(v.noOptimize))), conn, rows, appendRows)
			}
			report(b, benchRows, len(native))
		})
		b.Run("http/columns"+v.name, func(b *testing.B) {
			for b.Loop() {
				truncate(b)
				insertAuditCtx(b, clickhouse.Context(ctx, clickhouse.WithSettings(settings(v.noOptimize))), conn, rows, appendColumns)
			}
			report(b, benchRows, len(native))
		})
		b.Run("http/columns-2clients"+v.name, func(b *testing.B) {
			half := len(rows) / 2
			for b.Loop() {
				truncate(b)
				parts := [][]auditRow{rows[:half], rows[half:]}
				errs := make([]error, len(parts))
				var wg sync.WaitGroup
				for i, part := range parts {
					qctx := clickhouse.Context(ctx, clickhouse.WithSettings(settings(v.noOptimize)))
					wg.Go(func() { errs[i] = sendAudit(qctx, conn, part, appendColumns) })
				}
				wg.Wait()
				require.NoError(b, errors.Join(errs...))
			}
			report(b, benchRows, len(native))
		})
	}

	edb, err := chdb.Open(chdb.Options{Path: dataDir, PoolSize: 1})
	require.NoError(b, err)
	defer func() { require.NoError(b, edb.Close(ctx)) }()
	for _, v := range []struct {
		name     string
		settings string
	}{{"", ""}, {"/no-optimize", ", optimize_on_insert = 0"}} {
		b.Run("engine"+v.name, func(b *testing.B) {
			c, err := edb.Acquire(ctx)
			require.NoError(b, err)
			defer c.Release()
			for b.Loop() {
				truncate(b)
				token++
				stmt := fmt.Sprintf("INSERT INTO %s.openai_audit_logs SETTINGS insert_deduplication_token = 'bench-%d'%s", db, token, v.settings)
				ins, err := c.Insert(stmt, "Native", nil)
				require.NoError(b, err)
				for p := native; len(p) > 0; {
					n := min(len(p), 256<<10) // the server's chunk size
					_, err := ins.Write(p[:n])
					require.NoError(b, err)
					p = p[n:]
				}
				st, err := ins.Done()
				require.NoError(b, err)
				ins.Close()
				require.Equal(b, uint64(benchRows), st.RowsWritten)
			}
			report(b, benchRows, len(native))
		})
	}
}

// report sets rows/s and MB/s from the timed duration (truncates excluded).
func report(b *testing.B, rows, nativeBytes int) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(rows)/sec, "rows/s")
	b.ReportMetric(float64(nativeBytes)/sec/1e6, "MB/s")
	b.ReportMetric(float64(nativeBytes)/1e6, "native-MB/op")
}

// insertAuditCtx sends rows in one batch with fill, failing b on error.
func insertAuditCtx(b *testing.B, ctx context.Context, conn clickhouse.Conn, rows []auditRow, fill func(driver.Batch, []auditRow) error) {
	b.Helper()
	require.NoError(b, sendAudit(ctx, conn, rows, fill))
}

func sendAudit(ctx context.Context, conn clickhouse.Conn, rows []auditRow, fill func(driver.Batch, []auditRow) error) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO openai_audit_logs")
	if err != nil {
		return err
	}
	if err := fill(batch, rows); err != nil {
		_ = batch.Abort()
		return err
	}
	return batch.Send()
}

// appendRows appends row by row ([]any per row).
func appendRows(batch driver.Batch, rows []auditRow) error {
	for i := range rows {
		if err := batch.Append(rows[i].values()...); err != nil {
			return err
		}
	}
	return nil
}

// appendColumns appends one typed slice per column, in table order.
func appendColumns(batch driver.Batch, rows []auditRow) error {
	for i, c := range auditColumns(rows) {
		if err := batch.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

func column[T any](rows []auditRow, f func(*auditRow) T) []T {
	out := make([]T, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

// auditColumns returns rows as one typed slice per column, in table order.
func auditColumns(rows []auditRow) []any {
	type r = auditRow
	return []any{
		column(rows, func(r *r) string { return r.workspaceID }),
		column(rows, func(r *r) string { return r.sourceID }),
		column(rows, func(r *r) string { return r.sourceType }),
		column(rows, func(r *r) uint32 { return r.sourceTTL }),
		column(rows, func(r *r) time.Time { return r.receivedAt }),
		column(rows, func(r *r) string { return r.id }),
		column(rows, func(r *r) time.Time { return r.eventTime }),
		column(rows, func(r *r) string { return r.eventName }),
		column(rows, func(r *r) string { return r.eventID }),
		column(rows, func(r *r) string { return r.srcIP }),
		column(rows, func(r *r) string { return r.srcASCountryCode }),
		column(rows, func(r *r) uint32 { return r.srcASNumber }),
		column(rows, func(r *r) string { return r.srcASOrganization }),
		column(rows, func(r *r) string { return r.srcCity }),
		column(rows, func(r *r) string { return r.srcConnectionType }),
		column(rows, func(r *r) string { return r.srcISP }),
		column(rows, func(r *r) float64 { return r.srcLatitude }),
		column(rows, func(r *r) float64 { return r.srcLongitude }),
		column(rows, func(r *r) string { return r.srcUserType }),
		column(rows, func(r *r) string { return r.dstIP }),
		column(rows, func(r *r) string { return r.dstASCountryCode }),
		column(rows, func(r *r) uint32 { return r.dstASNumber }),
		column(rows, func(r *r) string { return r.dstASOrganization }),
		column(rows, func(r *r) string { return r.dstCity }),
		column(rows, func(r *r) string { return r.dstConnectionType }),
		column(rows, func(r *r) string { return r.dstISP }),
		column(rows, func(r *r) float64 { return r.dstLatitude }),
		column(rows, func(r *r) float64 { return r.dstLongitude }),
		column(rows, func(r *r) string { return r.dstUserType }),
		column(rows, func(r *r) map[string]string { return r.actor }),
		column(rows, func(r *r) map[string]string { return r.tags }),
		column(rows, func(r *r) []string { return r.resources }),
		column(rows, func(r *r) string { return r.serviceName }),
		column(rows, func(r *r) []map[string]any { return r.enrichments }),
		column(rows, func(r *r) bool { return r.readOnly }),
		column(rows, func(r *r) string { return r.rawLog }),
		column(rows, func(r *r) string { return r.eventType }),
		column(rows, func(r *r) string { return r.actorType }),
		column(rows, func(r *r) string { return r.actorIP }),
		column(rows, func(r *r) string { return r.actorUserID }),
		column(rows, func(r *r) string { return r.actorUserEmail }),
		column(rows, func(r *r) string { return r.apiKeyID }),
		column(rows, func(r *r) string { return r.apiKeyType }),
		column(rows, func(r *r) string { return r.serviceAccountID }),
		column(rows, func(r *r) string { return r.projectID }),
		column(rows, func(r *r) string { return r.projectName }),
	}
}
