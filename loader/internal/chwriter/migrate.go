package chwriter

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Applied is one row of the migrations table.
type Applied struct {
	Version  int
	Name     string
	Checksum string
}

// migrationsTableDDL creates schema.MigrationsTable: one row per applied
// version. ReplacingMergeTree keyed by version, so two loaders recording
// the same version concurrently leave one row.
func (w *Writer) migrationsTableDDL() string {
	opts := w.cfg.MigrationOptions()
	engine := "ReplacingMergeTree"
	onCluster := ""
	if opts.Cluster != "" {
		onCluster = " ON CLUSTER `" + opts.Cluster + "`"
		replica := opts.ReplicaName
		if replica == "" {
			replica = "{replica}"
		}
		engine = fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/auditpipe/%s/%s', '%s')", w.cfg.Database, schema.MigrationsTable, replica)
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s`.`%s`%s (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = %s ORDER BY version",
		w.cfg.Database, schema.MigrationsTable, onCluster, engine)
}

// AppliedMigrations returns the versions recorded in the migrations table,
// creating the table when it is missing.
func (w *Writer) AppliedMigrations(ctx context.Context) (map[int]Applied, error) {
	if err := w.Exec(ctx, w.migrationsTableDDL()); err != nil {
		return nil, fmt.Errorf("creating the migrations table: %w", err)
	}
	rows, err := w.conn.Query(ctx, fmt.Sprintf("SELECT toUInt32(version), name, checksum FROM `%s`.`%s` FINAL ORDER BY version", w.cfg.Database, schema.MigrationsTable))
	if err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	defer rows.Close()
	out := make(map[int]Applied)
	for rows.Next() {
		var v uint32
		var a Applied
		if err := rows.Scan(&v, &a.Name, &a.Checksum); err != nil {
			return nil, fmt.Errorf("scanning applied migrations: %w", err)
		}
		a.Version = int(v)
		out[a.Version] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	return out, nil
}

// Migrate applies the embedded migrations (schema.Migrations) that the
// migrations table does not list yet, in version order, recording each
// after its statements succeeded, and returns the versions it applied.
// Versions the table lists beyond the embedded ones (a newer release's,
// during a rolling upgrade) are logged and left alone.
// Statements are idempotent (IF NOT EXISTS), so a migration interrupted
// half-way is simply run again. A recorded migration whose checksum differs
// from the embedded file is an error: applied migrations must never be
// edited, add a new one instead. Concurrent Migrate calls from several
// loaders are safe.
func (w *Writer) Migrate(ctx context.Context) ([]int, error) {
	migs, err := schema.Migrations(w.cfg.MigrationOptions())
	if err != nil {
		return nil, fmt.Errorf("rendering migrations: %w", err)
	}
	applied, err := w.AppliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	var done []int
	known := make(map[int]bool, len(migs))
	for _, m := range migs {
		known[m.Version] = true
	}
	for v, a := range applied {
		if !known[v] {
			w.logger.Info("the database has a migration this loader does not know: a newer release applied it (rolling upgrade); the contract's columns are checked next",
				slog.Int("version", v), slog.String("name", a.Name))
		}
	}
	for _, m := range migs {
		if a, ok := applied[m.Version]; ok {
			if a.Checksum != m.Checksum {
				return done, fmt.Errorf("migration %04d_%s was applied with checksum %s but the embedded file has %s: applied migrations must not change",
					m.Version, m.Name, short(a.Checksum), short(m.Checksum))
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := w.conn.Exec(ctx, stmt); err != nil {
				return done, fmt.Errorf("applying migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		rec := fmt.Sprintf("INSERT INTO `%s`.`%s` (version, name, checksum) VALUES (%d, %s, %s)",
			w.cfg.Database, schema.MigrationsTable, m.Version, quote(m.Name), quote(m.Checksum))
		if err := w.conn.Exec(ctx, rec); err != nil {
			return done, fmt.Errorf("recording migration %04d_%s: %w", m.Version, m.Name, err)
		}
		w.logger.Info("applied migration", slog.Int("version", m.Version), slog.String("name", m.Name))
		done = append(done, m.Version)
	}
	return done, nil
}

// InstallDetections installs or updates the threat detections
// (pkg/detections) next to the table, as Config.Detections says; it does
// nothing when Detections.Install is off. Safe to run at every start and
// from several loaders at once.
func (w *Writer) InstallDetections(ctx context.Context) error {
	if !w.cfg.Detections.Install {
		return nil
	}
	if _, err := detections.Install(ctx, w.conn, w.cfg.DetectionOptions(), w.logger); err != nil {
		return fmt.Errorf("installing detections: %w", err)
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
