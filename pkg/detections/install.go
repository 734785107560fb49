package detections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Conn is what the installer needs of a ClickHouse connection;
// clickhouse-go's driver.Conn has it.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Report says what Install changed.
type Report struct {
	// Installed are the rules whose view was created or recreated (new,
	// changed, or missing).
	Installed []string
	// Unchanged counts the rules whose view was already current.
	Unchanged int
	// Removed are the rules no longer shipped whose views were dropped.
	Removed []string
	// UnknownSettings are detection_settings rows ("rule/name") that no
	// installed rule reads: probably a typo.
	UnknownSettings []string
}

// Install creates or updates the detections for opts, idempotently: the
// database, the shared tables and the parameters view, then one view per
// rule of Rules whose recorded checksum differs from the rendered one (or
// whose view is missing), and it drops the views of rules no longer
// shipped. Each rule's metadata and knob defaults are written to
// detection_rules before its view is created (the view reads them), and
// the checksum after, so an interrupted install is completed by the next.
// Users' overrides in detection_settings are never touched; rows naming an
// unknown knob are reported (and logged as a warning).
//
// Several installers of the same version may run at once (loaders
// starting together): every statement tolerates a concurrent twin. logger
// may be nil.
func Install(ctx context.Context, conn Conn, opts Options, logger *slog.Logger) (Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Validate(); err != nil {
		return Report{}, fmt.Errorf("validating detection options: %w", err)
	}
	opts = opts.WithDefaults()
	rules, err := Rules()
	if err != nil {
		return Report{}, err
	}
	views := make([]View, len(rules))
	for i, r := range rules {
		if views[i], err = opts.RenderView(r); err != nil {
			return Report{}, err
		}
	}
	if err := createObjects(ctx, conn, opts); err != nil {
		return Report{}, err
	}
	installed, err := installedChecksums(ctx, conn, opts)
	if err != nil {
		return Report{}, err
	}
	existing, err := existingViews(ctx, conn, opts)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	for _, v := range views {
		if installed[v.Rule.ID] == v.Checksum && existing[v.Name] {
			rep.Unchanged++
			continue
		}
		if err := installView(ctx, conn, opts, v); err != nil {
			return rep, err
		}
		rep.Installed = append(rep.Installed, v.Rule.ID)
	}
	if rep.Removed, err = removeStale(ctx, conn, opts, rules, installed, existing); err != nil {
		return rep, err
	}
	if rep.UnknownSettings, err = unknownSettings(ctx, conn, opts, rules); err != nil {
		return rep, err
	}
	if len(rep.UnknownSettings) > 0 {
		logger.Warn("detection_settings has rows no rule reads (check rule and knob names in docs/detections.md)",
			slog.String("table", opts.DetectionsDatabase+"."+SettingsTable), slog.Any("settings", rep.UnknownSettings))
	}
	logger.Info("detections installed", slog.String("database", opts.DetectionsDatabase), slog.Int("rules", len(rules)),
		slog.Any("installed", rep.Installed), slog.Any("unchanged", rep.Unchanged), slog.Any("removed", rep.Removed), slog.Any("refresh", opts.Refresh))
	return rep, nil
}

// createObjects creates the database (checking its engine) and the shared
// tables and view.
func createObjects(ctx context.Context, conn Conn, opts Options) error {
	if err := conn.Exec(ctx, opts.databaseStatement()); err != nil {
		return fmt.Errorf("creating the detections database %s: %w", opts.DetectionsDatabase, err)
	}
	var engine string
	if err := queryOne(ctx, conn, "SELECT engine FROM system.databases WHERE name = "+quoteString(opts.DetectionsDatabase), &engine); err != nil {
		return fmt.Errorf("reading the engine of database %s: %w", opts.DetectionsDatabase, err)
	}
	if engine != "Atomic" && engine != "Replicated" {
		return fmt.Errorf("database %s has engine %s, but refreshable materialized views need Atomic or Replicated: drop it or choose another detections database",
			opts.DetectionsDatabase, engine)
	}
	stmts, err := opts.tableStatements()
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("creating the detection tables: %w", err)
		}
	}
	return nil
}

// installedChecksums reads the checksum recorded for each installed rule.
func installedChecksums(ctx context.Context, conn Conn, opts Options) (map[string]string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT rule, checksum FROM %s FINAL", opts.name(RulesTable)))
	if err != nil {
		return nil, fmt.Errorf("reading installed detection rules: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, sum string
		if err := rows.Scan(&id, &sum); err != nil {
			return nil, fmt.Errorf("reading installed detection rules: %w", err)
		}
		out[id] = sum
	}
	return out, rows.Err()
}

// existingViews lists the views in the detections database.
func existingViews(ctx context.Context, conn Conn, opts Options) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = "+quoteString(opts.DetectionsDatabase)+" AND engine = 'MaterializedView'")
	if err != nil {
		return nil, fmt.Errorf("listing detection views: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("listing detection views: %w", err)
		}
		out[name] = true
	}
	return out, rows.Err()
}

// installView records the rule's metadata and defaults (pending), replaces
// its view, then records the checksum.
func installView(ctx context.Context, conn Conn, opts Options, v View) error {
	if err := recordRule(ctx, conn, opts, v.Rule, "pending"); err != nil {
		return err
	}
	if err := conn.Exec(ctx, "DROP VIEW IF EXISTS "+opts.name(v.Name)); err != nil {
		return fmt.Errorf("dropping the old view of detection %s: %w", v.Rule.ID, err)
	}
	if err := conn.Exec(ctx, v.Create); err != nil {
		return fmt.Errorf("creating the view of detection %s: %w", v.Rule.ID, err)
	}
	return recordRule(ctx, conn, opts, v.Rule, v.Checksum)
}

func recordRule(ctx context.Context, conn Conn, opts Options, r Rule, checksum string) error {
	var kv []string
	for _, k := range r.Knobs {
		kv = append(kv, quoteString(k.Name), quoteString(k.Default))
	}
	q := fmt.Sprintf("INSERT INTO %s (rule, title, severity, mitreTechniqueID, mitreTechniqueName, description, defaults, checksum) VALUES (%s, %s, %s, %s, %s, %s, map(%s), %s)",
		opts.name(RulesTable), quoteString(r.ID), quoteString(r.Title), quoteString(string(r.Severity)), quoteString(r.MITRE.ID),
		quoteString(r.MITRE.Name), quoteString(r.Description), strings.Join(kv, ", "), quoteString(checksum))
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("recording detection %s: %w", r.ID, err)
	}
	return nil
}

// removeStale drops the views and metadata of rules that are installed
// but no longer shipped.
func removeStale(ctx context.Context, conn Conn, opts Options, rules []Rule, installed map[string]string, existing map[string]bool) ([]string, error) {
	shipped := map[string]bool{}
	for _, r := range rules {
		shipped[r.ID] = true
	}
	stale := map[string]bool{}
	for id := range installed {
		if !shipped[id] {
			stale[id] = true
		}
	}
	for name := range existing {
		if id, ok := strings.CutPrefix(name, ViewPrefix); ok && !shipped[id] {
			stale[id] = true
		}
	}
	var removed []string
	for id := range stale {
		if err := conn.Exec(ctx, "DROP VIEW IF EXISTS "+opts.name(ViewName(id))); err != nil {
			return removed, fmt.Errorf("dropping the view of retired detection %s: %w", id, err)
		}
		if err := conn.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE rule = %s", opts.name(RulesTable), quoteString(id))); err != nil {
			return removed, fmt.Errorf("forgetting retired detection %s: %w", id, err)
		}
		removed = append(removed, id)
	}
	slices.Sort(removed)
	return removed, nil
}

// unknownSettings lists the override rows no rule reads.
func unknownSettings(ctx context.Context, conn Conn, opts Options, rules []Rule) ([]string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT rule, name FROM %s ORDER BY rule, name", opts.name(SettingsTable)))
	if err != nil {
		return nil, fmt.Errorf("reading detection settings: %w", err)
	}
	defer rows.Close()
	known := knownKnobs(rules)
	var out []string
	for rows.Next() {
		var rule, name string
		if err := rows.Scan(&rule, &name); err != nil {
			return nil, fmt.Errorf("reading detection settings: %w", err)
		}
		if _, ok := slices.BinarySearch(known, rule+"/"+name); !ok {
			out = append(out, rule+"/"+name)
		}
	}
	return out, rows.Err()
}

func queryOne(ctx context.Context, conn Conn, q string, dest ...any) error {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no row")
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

// RunNow refreshes the views of the given rules (every installed rule when
// ids is empty) and waits for each refresh to finish: SYSTEM REFRESH VIEW,
// then SYSTEM WAIT VIEW. It returns the first refresh that failed, with
// ClickHouse's reason (a bad knob value, for instance). Tests and
// operators use it to run detections on demand.
func RunNow(ctx context.Context, conn Conn, opts Options, ids ...string) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("validating detection options: %w", err)
	}
	opts = opts.WithDefaults()
	if len(ids) == 0 {
		rules, err := Rules()
		if err != nil {
			return err
		}
		for _, r := range rules {
			ids = append(ids, r.ID)
		}
	}
	for _, id := range ids {
		if err := conn.Exec(ctx, "SYSTEM REFRESH VIEW "+opts.name(ViewName(id))); err != nil {
			return fmt.Errorf("refreshing detection %s: %w", id, err)
		}
	}
	for _, id := range ids {
		if err := conn.Exec(ctx, "SYSTEM WAIT VIEW "+opts.name(ViewName(id))); err != nil {
			return fmt.Errorf("running detection %s: %w", id, err)
		}
	}
	return nil
}
