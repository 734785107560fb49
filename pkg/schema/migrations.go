package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/auditpipe/auditpipe/schemas"
)

// MigrationsTable is the table in MigrationOptions.Database where the
// loader records applied migrations (one row per version). The loader
// creates it; see docs/schema.md for its shape.
const MigrationsTable = "auditpipe_schema_migrations"

// MigrationOptions selects how the migrations are rendered. The zero value
// renders for a single node into the database "default".
type MigrationOptions struct {
	// Database holds the tables; default "default".
	Database string
	// Cluster, when set, renders ON CLUSTER DDL, Replicated engines storing
	// rows in <table>_local, and a Distributed <table> over them.
	Cluster string
	// ReplicationPath is the Keeper path prefix of Replicated tables, to
	// which "/<table>" is appended; default "/clickhouse/tables/{shard}/{database}".
	ReplicationPath string
	// ReplicaName is the Replicated engine's replica name; default "{replica}".
	ReplicaName string
}

var (
	identRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	clusterRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)
)

func (o MigrationOptions) withDefaults() MigrationOptions {
	if o.Database == "" {
		o.Database = "default"
	}
	if o.ReplicationPath == "" {
		o.ReplicationPath = "/clickhouse/tables/{shard}/{database}"
	}
	if o.ReplicaName == "" {
		o.ReplicaName = "{replica}"
	}
	return o
}

// Validate reports every invalid option: Database must be a plain
// identifier, Cluster letters, digits, '_', '.' or '-', and the replication
// settings must not contain quotes or backslashes.
func (o MigrationOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	if !identRE.MatchString(o.Database) {
		errs = append(errs, fmt.Errorf("database: %q is not a plain identifier", o.Database))
	}
	if o.Cluster != "" && !clusterRE.MatchString(o.Cluster) {
		errs = append(errs, fmt.Errorf("cluster: %q has characters outside [A-Za-z0-9_.-]", o.Cluster))
	}
	if strings.ContainsAny(o.ReplicationPath, `'\`) {
		errs = append(errs, fmt.Errorf("replication_path: %q contains a quote or backslash", o.ReplicationPath))
	}
	if strings.ContainsAny(o.ReplicaName, `'\`) {
		errs = append(errs, fmt.Errorf("replica_name: %q contains a quote or backslash", o.ReplicaName))
	}
	return errors.Join(errs...)
}

// StorageTable returns the table that stores the rows of table: table
// itself on a single node, table + "_local" in cluster mode (where table is
// the Distributed table over it). OPTIMIZE and system.parts queries target
// the storage table; inserts and reads target table.
func (o MigrationOptions) StorageTable(table string) string {
	if o.Cluster != "" {
		return table + "_local"
	}
	return table
}

// Migration is one rendered migration file.
type Migration struct {
	Version    int      // from the NNNN_ prefix; versions are 1, 2, 3, ...
	Name       string   // the file name without the prefix and ".sql"
	Checksum   string   // hex SHA-256 of the template file, to detect edits of applied migrations
	Statements []string // rendered statements, in order, without semicolons
}

var migrationFileRE = regexp.MustCompile(`^([0-9]{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$`)

// Migrations renders the embedded migrations (schemas/clickhouse/migrations)
// for opts, sorted by version. Apply them in order, each once, recording
// the version in MigrationsTable.
func Migrations(opts MigrationOptions) ([]Migration, error) {
	sub, err := fs.Sub(schemas.Migrations, "clickhouse/migrations")
	if err != nil {
		return nil, fmt.Errorf("opening embedded migrations: %w", err)
	}
	return MigrationsFromFS(sub, opts)
}

// MigrationsFromFS renders the *.sql files at the root of fsys like
// Migrations does. Every file must be named NNNN_name.sql (four digits,
// lower_snake_case name); versions must be unique and run 1, 2, 3, ...
// without gaps; every file must render to at least one statement.
func MigrationsFromFS(fsys fs.FS, opts MigrationOptions) ([]Migration, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("validating migration options: %w", err)
	}
	opts = opts.withDefaults()
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var migs []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q: want NNNN_lower_snake_name.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		src, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		stmts, err := renderMigration(e.Name(), string(src), opts)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(src)
		migs = append(migs, Migration{Version: version, Name: m[2], Checksum: hex.EncodeToString(sum[:]), Statements: stmts})
	}
	slices.SortFunc(migs, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range migs {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: want version %d (versions start at 1, unique, no gaps)", m.Version, m.Name, i+1)
		}
	}
	if len(migs) == 0 {
		return nil, errors.New("no migrations")
	}
	return migs, nil
}

type migrationData struct {
	Database  string
	Cluster   string
	OnCluster string
}

func renderMigration(file, src string, opts MigrationOptions) ([]string, error) {
	funcs := template.FuncMap{
		"local": opts.StorageTable,
		"quote": quoteString,
		"engine": func(kind, table string, args ...string) string {
			if opts.Cluster == "" {
				return kind + "(" + strings.Join(args, ", ") + ")"
			}
			repl := []string{
				quoteString(opts.ReplicationPath + "/" + opts.StorageTable(table)),
				quoteString(opts.ReplicaName),
			}
			return "Replicated" + kind + "(" + strings.Join(append(repl, args...), ", ") + ")"
		},
	}
	tmpl, err := template.New(file).Funcs(funcs).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parsing migration %s: %w", file, err)
	}
	data := migrationData{Database: opts.Database, Cluster: opts.Cluster}
	if opts.Cluster != "" {
		data.OnCluster = " ON CLUSTER `" + opts.Cluster + "`"
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("rendering migration %s: %w", file, err)
	}
	stmts, err := SplitStatements(buf.String())
	if err != nil {
		return nil, fmt.Errorf("splitting migration %s: %w", file, err)
	}
	if len(stmts) == 0 {
		return nil, fmt.Errorf("migration %s has no statements", file)
	}
	return stmts, nil
}

// quoteString returns s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
