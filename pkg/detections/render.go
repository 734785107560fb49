package detections

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

// Object names in the detections database.
const (
	// FindingsTable receives every rule's findings.
	FindingsTable = "openai_audit_detections"
	// RulesTable lists the installed rules, their metadata, knob defaults
	// and checksums (owned by the installer).
	RulesTable = "detection_rules"
	// SettingsTable holds the users' knob overrides (never written by the
	// installer).
	SettingsTable = "detection_settings"
	// ParametersView gives every knob's effective value.
	ParametersView = "detection_parameters"
	// ViewPrefix starts the name of every rule's view: detect_<rule id>.
	ViewPrefix = "detect_"
)

// MaxEventIDs bounds the event ids stored with one finding; the details
// of rules that can exceed it carry the full count.
const MaxEventIDs = 200

// DefaultRefresh is how often each rule runs by default.
const DefaultRefresh = 5 * time.Minute

// Options selects where and how the detections are installed. The zero
// value installs next to "default".openai_audit_logs into
// "default_detections", refreshing every 5 minutes.
type Options struct {
	// Database holds openai_audit_logs; default "default".
	Database string
	// DetectionsDatabase holds the detection objects; default Database +
	// "_detections". It must not be Database: the main database may have
	// an engine that refuses refreshable views (the embedded engine's
	// "default" does).
	DetectionsDatabase string
	// Cluster, when set, creates the detections database ON CLUSTER with
	// the Replicated engine (one shard, so each refresh runs once on one
	// replica and every replica holds all findings); the rules read the
	// Distributed openai_audit_logs.
	Cluster string
	// ReplicationPath is the Keeper path of the Replicated database;
	// default "/clickhouse/auditpipe/databases/" + DetectionsDatabase.
	ReplicationPath string
	// ReplicaName is the Replicated database's replica name; default
	// "{replica}".
	ReplicaName string
	// Refresh is how often every rule runs (REFRESH EVERY), whole seconds,
	// at least one second; default 5 minutes.
	Refresh time.Duration
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// WithDefaults returns o with every empty field set to its default.
func (o Options) WithDefaults() Options {
	if o.Database == "" {
		o.Database = "default"
	}
	if o.DetectionsDatabase == "" {
		o.DetectionsDatabase = o.Database + "_detections"
	}
	if o.ReplicationPath == "" {
		o.ReplicationPath = "/clickhouse/auditpipe/databases/" + o.DetectionsDatabase
	}
	if o.ReplicaName == "" {
		o.ReplicaName = "{replica}"
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	return o
}

// Validate reports every invalid option.
func (o Options) Validate() error {
	o = o.WithDefaults()
	var errs []error
	for _, db := range [][2]string{{"database", o.Database}, {"detections database", o.DetectionsDatabase}} {
		if !identRE.MatchString(db[1]) {
			errs = append(errs, fmt.Errorf("%s: %q is not a plain identifier", db[0], db[1]))
		}
	}
	if o.DetectionsDatabase == o.Database {
		errs = append(errs, fmt.Errorf("detections database: must differ from the database holding openai_audit_logs (%q)", o.Database))
	}
	if err := (schema.MigrationOptions{Cluster: o.Cluster, ReplicaName: o.ReplicaName, ReplicationPath: o.ReplicationPath}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Refresh < time.Second || o.Refresh%time.Second != 0 {
		errs = append(errs, fmt.Errorf("refresh: %s: want whole seconds, at least 1s", o.Refresh))
	}
	return errors.Join(errs...)
}

func quoteIdent(s string) string { return "`" + s + "`" }

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// name returns the quoted, database-qualified name of object in the
// detections database.
func (o Options) name(object string) string {
	return quoteIdent(o.DetectionsDatabase) + "." + quoteIdent(object)
}

// ViewName returns the view that runs rule id.
func ViewName(id string) string { return ViewPrefix + id }

// databaseStatement creates the detections database.
func (o Options) databaseStatement() string {
	o = o.WithDefaults()
	if o.Cluster == "" {
		return "CREATE DATABASE IF NOT EXISTS " + quoteIdent(o.DetectionsDatabase) + " ENGINE = Atomic"
	}
	return fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s ON CLUSTER %s ENGINE = Replicated(%s, 'all', %s)",
		quoteIdent(o.DetectionsDatabase), quoteIdent(o.Cluster), quoteString(o.ReplicationPath), quoteString(o.ReplicaName))
}

// tableStatements renders schemas/detections/tables.sql.
func (o Options) tableStatements() ([]string, error) {
	o = o.WithDefaults()
	src, err := fs.ReadFile(schemas.Detections, "detections/tables.sql")
	if err != nil {
		return nil, fmt.Errorf("reading the detection tables: %w", err)
	}
	funcs := template.FuncMap{
		"engine": func(kind string, args ...string) string {
			if o.Cluster != "" {
				kind = "Replicated" + kind
			}
			return kind + "(" + strings.Join(args, ", ") + ")"
		},
	}
	tmpl, err := template.New("tables.sql").Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parsing the detection tables: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]string{"DB": quoteIdent(o.DetectionsDatabase)}); err != nil {
		return nil, fmt.Errorf("rendering the detection tables: %w", err)
	}
	return schema.SplitStatements(buf.String())
}

// Statements renders everything Install creates for the embedded rules,
// in order: the database, the shared tables and view, then one view per
// rule. Install runs them on a fresh database; it skips views that are
// already current.
func (o Options) Statements() ([]string, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("validating detection options: %w", err)
	}
	o = o.WithDefaults()
	tables, err := o.tableStatements()
	if err != nil {
		return nil, err
	}
	rules, err := Rules()
	if err != nil {
		return nil, err
	}
	out := append([]string{o.databaseStatement()}, tables...)
	for _, r := range rules {
		v, err := o.RenderView(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v.Create)
	}
	return out, nil
}

// View is one rule rendered as a refreshable materialized view.
type View struct {
	Rule Rule
	// Name is the view's name in the detections database.
	Name string
	// Create is the CREATE MATERIALIZED VIEW statement.
	Create string
	// Checksum identifies what is installed: the rule file and the
	// rendered statement (so a changed option reinstalls the view too).
	Checksum string
}

// RenderView renders rule as the view that runs it for o.
func (o Options) RenderView(r Rule) (View, error) {
	if err := o.Validate(); err != nil {
		return View{}, fmt.Errorf("validating detection options: %w", err)
	}
	o = o.WithDefaults()
	body, err := o.renderQuery(r)
	if err != nil {
		return View{}, err
	}
	key := "f.workspaceID, f.sourceID, f.entity, f.windowStart"
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE MATERIALIZED VIEW IF NOT EXISTS %s\n", o.name(ViewName(r.ID)))
	fmt.Fprintf(&b, "REFRESH EVERY %d SECOND APPEND TO %s\nAS SELECT\n", int64(o.Refresh/time.Second), o.name(FindingsTable))
	fmt.Fprintf(&b, "    %s AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,\n", quoteString(r.ID))
	fmt.Fprintf(&b, "    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,\n")
	fmt.Fprintf(&b, "    arraySlice(f.eventIDs, 1, %d) AS eventIDs, f.details AS details\n", MaxEventIDs)
	fmt.Fprintf(&b, "FROM\n(\n%s\n) AS f\n", strings.TrimSpace(body))
	fmt.Fprintf(&b, "WHERE %s\n", o.knobExpr(r.ID, KnobEnabled, KnobBool))
	fmt.Fprintf(&b, "    AND (%s) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM %s WHERE rule = %s)\n", key, o.name(FindingsTable), quoteString(r.ID))
	fmt.Fprintf(&b, "ORDER BY indexOf([%s], f.severity) DESC\nLIMIT 1 BY %s", severityList(), key)
	create := b.String()
	sum := sha256.Sum256([]byte(r.Checksum + "\n" + create))
	return View{Rule: r, Name: ViewName(r.ID), Create: create, Checksum: hex.EncodeToString(sum[:])}, nil
}

// severityList is Severities as SQL string literals, lowest first.
func severityList() string {
	q := make([]string, len(Severities))
	for i, s := range Severities {
		q[i] = quoteString(string(s))
	}
	return strings.Join(q, ", ")
}

// knobExpr reads knob name of rule id from the parameters view as typ.
func (o Options) knobExpr(id, name string, typ KnobType) string {
	var value string
	switch typ {
	case KnobUInt:
		value = "toUInt32(value)"
	case KnobFloat:
		value = "toFloat64(value)"
	case KnobBool:
		value = "toBool(value)"
	case KnobList:
		value = "arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value)))"
	default:
		value = "value"
	}
	return fmt.Sprintf("(SELECT %s FROM %s WHERE rule = %s AND name = %s)", value, o.name(ParametersView), quoteString(id), quoteString(name))
}

// renderQuery renders the rule's SELECT template. Its functions:
//
//	logs             the openai_audit_logs table
//	inventory        openai_inventory_now, the objects that exist now
//	inventoryKeys    openai_inventory_keys, the API keys now
//	inventoryChanges, inventorySnapshots   the inventory's tables (0004)
//	current          the sources whose inventory is current: a snapshot
//	                 within lookback_minutes (posture rules judge only those)
//	recent           the events a refresh considers: received or
//	                 happened within lookback_minutes
//	actor            who acted: the user's email, else the service
//	                 account, else the API key, else '(no actor)'
//	uint/float/str/list/bool "knob"   the knob's effective value, typed
//
// A knob must be used with its declared type; every declared knob must be
// used.
func (o Options) renderQuery(r Rule) (string, error) {
	used := map[string]bool{KnobEnabled: true}
	var errs []error
	knob := func(typ KnobType) func(string) string {
		return func(name string) string {
			k, ok := r.Knob(name)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("knob %q is not declared", name))
			case k.Type != typ:
				errs = append(errs, fmt.Errorf("knob %q is declared %s but read as %s", name, k.Type, typ))
			}
			used[name] = true
			return o.knobExpr(r.ID, name, typ)
		}
	}
	lookback := knob(KnobUInt)
	funcs := template.FuncMap{
		"logs": func() string { return quoteIdent(o.Database) + "." + quoteIdent(schema.Table) },
		"recent": func() string {
			l := "toIntervalMinute(" + lookback(KnobLookback) + ")"
			return "(receivedAt >= now() - " + l + " OR eventTime >= now() - " + l + ")"
		},
		"inventory":          func() string { return o.table("openai_inventory_now") },
		"inventoryKeys":      func() string { return o.table("openai_inventory_keys") },
		"inventoryChanges":   func() string { return o.table("openai_inventory_changes") },
		"inventorySnapshots": func() string { return o.table("openai_inventory_snapshots") },
		"current": func() string {
			return "(workspaceID, sourceID) IN (SELECT workspaceID, sourceID FROM " + o.table("openai_inventory_snapshots") +
				" WHERE snapshotAt >= now() - toIntervalMinute(" + lookback(KnobLookback) + "))"
		},
		"actor": func() string {
			return "multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)')"
		},
		"uint":  knob(KnobUInt),
		"float": knob(KnobFloat),
		"str":   knob(KnobString),
		"list":  knob(KnobList),
		"bool":  knob(KnobBool),
	}
	tmpl, err := template.New(r.File).Funcs(funcs).Option("missingkey=error").Parse(r.Query)
	if err != nil {
		return "", fmt.Errorf("detection rule %s: parsing the query: %w", r.ID, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, nil); err != nil {
		return "", fmt.Errorf("detection rule %s: rendering the query: %w", r.ID, err)
	}
	for _, k := range r.Knobs {
		if !used[k.Name] {
			errs = append(errs, fmt.Errorf("knob %q is declared but never read", k.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("detection rule %s: %w", r.ID, err)
	}
	stmts, err := schema.SplitStatements(buf.String())
	if err != nil {
		return "", fmt.Errorf("detection rule %s: %w", r.ID, err)
	}
	if len(stmts) != 1 {
		return "", fmt.Errorf("detection rule %s: want exactly one SELECT, got %d statements", r.ID, len(stmts))
	}
	return stmts[0], nil
}

// table is the quoted name of a table or view in the main database.
func (o Options) table(name string) string { return quoteIdent(o.Database) + "." + quoteIdent(name) }

// knownKnobs returns "rule/name" for every knob of rules, sorted.
func knownKnobs(rules []Rule) []string {
	var out []string
	for _, r := range rules {
		for _, k := range r.Knobs {
			out = append(out, r.ID+"/"+k.Name)
		}
	}
	slices.Sort(out)
	return out
}
