package chwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Writer inserts rows into openai_audit_logs. It is safe for concurrent
// use; each Insert uses its own connection from a pool of MaxOpenConns.
type Writer struct {
	cfg    Config
	conn   driver.Conn
	logger *slog.Logger
	insert string
	cols   []clickhouse.ColumnNameAndType
}

// New validates cfg and returns a Writer. It does not contact the server:
// use Ping. The caller must Close it.
func New(cfg Config, logger *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating clickhouse config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		return nil, err
	}
	opts := &clickhouse.Options{
		Addr:         cfg.Addr,
		Auth:         clickhouse.Auth{Database: cfg.Database, Username: cfg.User, Password: cfg.Password.Value()},
		TLS:          tlsCfg,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.InsertTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
		ClientInfo:   clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "auditpipe-loader", Version: "1"}}},
	}
	switch cfg.Compression {
	case "lz4":
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	case "zstd":
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionZSTD}
	}
	if cfg.Protocol == ProtocolHTTP {
		opts.Protocol = clickhouse.HTTP
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("opening clickhouse connection pool: %w", err)
	}
	cols := schema.Columns()
	names := make([]string, len(cols))
	w := &Writer{cfg: cfg, conn: conn, logger: logger.With(slog.String("component", "loader.chwriter"))}
	for i, c := range cols {
		names[i] = "`" + c.Name + "`"
		w.cols = append(w.cols, clickhouse.ColumnNameAndType{Name: c.Name, Type: c.CHType})
	}
	w.insert = fmt.Sprintf("INSERT INTO `%s`.`%s` (%s)", cfg.Database, schema.Table, strings.Join(names, ", "))
	return w, nil
}

// Close closes the connection pool.
func (w *Writer) Close() error { return w.conn.Close() }

// Ping reports whether ClickHouse answers.
func (w *Writer) Ping(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		return fmt.Errorf("pinging clickhouse: %w", err)
	}
	return nil
}

// Insert writes rows in one INSERT and returns once ClickHouse has
// acknowledged it. token is the insert_deduplication_token: a retry of the
// same rows with the same token within the table's deduplication window
// inserts nothing. Insert is synchronous (async_insert=0) so that the
// acknowledgement means the rows are stored. Errors blaming the rows wrap
// ErrRejected; all others are transient.
func (w *Writer) Insert(ctx context.Context, token string, rows []*schema.AuditLog) error {
	if len(rows) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
	defer cancel()
	settings := clickhouse.Settings{
		"insert_deduplicate":         1,
		"insert_deduplication_token": token,
		"async_insert":               0,
		"optimize_on_insert":         0,
	}
	if w.cfg.OptimizeOnInsert {
		settings["optimize_on_insert"] = 1
	}
	if w.cfg.Cluster != "" {
		// Through the Distributed table: forward to the shards before
		// acknowledging, so the acknowledgement (and the token) cover the
		// stored rows.
		settings["distributed_foreground_insert"] = 1
	}
	qopts := []clickhouse.QueryOption{clickhouse.WithSettings(settings)}
	if w.cfg.Protocol == ProtocolHTTP {
		qopts = append(qopts, clickhouse.WithColumnNamesAndTypes(w.cols))
	}
	b, err := w.conn.PrepareBatch(clickhouse.Context(ctx, qopts...), w.insert)
	if err != nil {
		return fmt.Errorf("preparing insert: %w", classify(err))
	}
	defer func() { _ = b.Abort() }()
	if err := appendColumns(b, rows); err != nil {
		return fmt.Errorf("appending rows: %w", classify(err))
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("sending insert of %d rows: %w", len(rows), classify(err))
	}
	return nil
}

// Exec runs one statement (DDL, maintenance).
func (w *Writer) Exec(ctx context.Context, query string, args ...any) error {
	if err := w.conn.Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("executing %q: %w", abbreviate(query), err)
	}
	return nil
}

// Conn returns the underlying clickhouse-go connection (queries in tests
// and tools).
func (w *Writer) Conn() driver.Conn { return w.conn }

func abbreviate(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 80 {
		return q[:77] + "..."
	}
	return q
}

// CheckTable compares the live table's columns (DESCRIBE TABLE) with the
// contract's and reports every mismatch: each contract column must be there
// with its type, in the contract's order. Columns the contract does not know
// are allowed, wherever they are, and returned: a newer release's migrations
// added them during a rolling upgrade, and since Insert names its columns,
// ClickHouse fills them with their defaults for the rows this loader
// inserts.
func (w *Writer) CheckTable(ctx context.Context) (newer []schema.Column, err error) {
	rows, err := w.conn.Query(ctx, fmt.Sprintf("DESCRIBE TABLE `%s`.`%s`", w.cfg.Database, schema.Table))
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", schema.Table, err)
	}
	defer rows.Close()
	want := schema.Columns()
	known := make(map[string]bool, len(want))
	for _, c := range want {
		known[c.Name] = true
	}
	var got []schema.Column
	for rows.Next() {
		var name, typ, defaultType, defaultExpr, comment, codec, ttl string
		if err := rows.Scan(&name, &typ, &defaultType, &defaultExpr, &comment, &codec, &ttl); err != nil {
			return nil, fmt.Errorf("scanning DESCRIBE: %w", err)
		}
		c := schema.Column{Name: name, CHType: schema.NormalizeType(typ)}
		if known[name] {
			got = append(got, c)
		} else {
			newer = append(newer, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading DESCRIBE: %w", err)
	}
	if ms := schema.CompareColumns("clickhouse", want, got); len(ms) > 0 {
		errs := make([]error, len(ms))
		for i, m := range ms {
			errs[i] = errors.New(m.String())
		}
		return newer, fmt.Errorf("table %s.%s does not match the schema contract: %w", w.cfg.Database, schema.Table, errors.Join(errs...))
	}
	return newer, nil
}
