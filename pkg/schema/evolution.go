package schema

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/schemas"
)

// AvroRelease is one released version of the Avro schema.
type AvroRelease struct {
	Version int    // 1, 2, 3, …
	File    string // its file, avro/openai_audit_logs.v<Version>.avsc
	Schema  string // the .avsc text
}

var releaseFile = regexp.MustCompile(`^openai_audit_logs\.v([1-9][0-9]*)\.avsc$`)

// AvroReleases returns every released version of the Avro schema embedded
// in schemas.AvroVersions, oldest first. It fails unless the versions are
// 1 … schemas.AvroVersion without gaps and the newest is schemas.AvroSchema
// byte for byte: the current schema is always the newest release.
func AvroReleases() ([]AvroRelease, error) {
	entries, err := fs.ReadDir(schemas.AvroVersions, "avro")
	if err != nil {
		return nil, fmt.Errorf("reading the avro schema versions: %w", err)
	}
	var out []AvroRelease
	for _, e := range entries {
		m := releaseFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("avro/%s: want openai_audit_logs.v<N>.avsc", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(schemas.AvroVersions, "avro/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading avro/%s: %w", e.Name(), err)
		}
		out = append(out, AvroRelease{Version: v, File: "avro/" + e.Name(), Schema: string(b)})
	}
	slices.SortFunc(out, func(a, b AvroRelease) int { return a.Version - b.Version })
	for i, r := range out {
		if r.Version != i+1 {
			return nil, fmt.Errorf("avro schema versions must be 1, 2, 3, … without gaps: found v%d where v%d belongs", r.Version, i+1)
		}
	}
	switch {
	case len(out) != schemas.AvroVersion:
		return nil, fmt.Errorf("schemas.AvroVersion is %d but the newest avro schema file is v%d: move AvroVersion and AvroSchema's embed line to the newest file", schemas.AvroVersion, len(out))
	case out[len(out)-1].Schema != schemas.AvroSchema:
		return nil, fmt.Errorf("schemas.AvroSchema is not %s, the newest version: move its embed line there", out[len(out)-1].File)
	}
	return out, nil
}

// Evolution rules, the Rule of an EvolutionProblem.
const (
	// RuleBackward: the current schema must read records written with
	// every earlier one (what the registry subject enforces, and what the
	// loader needs while the enricher still writes the earlier version).
	RuleBackward = "backward"
	// RuleForward: a reader pinned to any earlier version must read
	// records written with the current one (third-party consumers that
	// have not upgraded).
	RuleForward = "forward"
	// RuleRemoved: a field may only leave the schema after a released
	// version marked it "deprecated": true. Avro fills a renamed field's
	// default on both sides, so a rename passes RuleBackward and
	// RuleForward while losing its data: this rule catches it.
	RuleRemoved = "removed"
	// RuleRetyped: a field keeps its type, logical type included (Avro's
	// own check lets long become double or a timestamp a plain long, but
	// the ClickHouse column cannot follow).
	RuleRetyped = "retyped"
)

// EvolutionProblem is one way the current schema breaks the evolution
// rules against an earlier release.
type EvolutionProblem struct {
	From    int    // the earlier version
	To      int    // the current version
	Rule    string // RuleBackward, RuleForward, RuleRemoved or RuleRetyped
	Problem string // what is wrong and what to do instead
}

func (p EvolutionProblem) String() string {
	return fmt.Sprintf("v%d → v%d: %s: %s", p.From, p.To, p.Rule, p.Problem)
}

// CheckEvolution checks the last of releases (the current schema) against
// every earlier one: it must be BACKWARD and FORWARD compatible with each
// (hamba/avro's SchemaCompatibility; together FULL_TRANSITIVE), keep every
// field's type, and drop only fields a released version had marked
// "deprecated": true. It returns every problem; nil means the current
// schema may be released. Releases must be ordered oldest first.
func CheckEvolution(releases []AvroRelease) []EvolutionProblem {
	if len(releases) == 0 {
		return []EvolutionProblem{{Problem: "no avro schema release"}}
	}
	cur := releases[len(releases)-1]
	curSch, err := avro.ParseWithCache(cur.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return []EvolutionProblem{{From: cur.Version, To: cur.Version, Problem: fmt.Sprintf("%s does not parse: %v", cur.File, err)}}
	}
	curFields := schemaFields(curSch)
	deprecated := deprecatedFields(releases[:len(releases)-1])
	var out []EvolutionProblem
	for _, old := range releases[:len(releases)-1] {
		problem := func(rule, format string, args ...any) {
			out = append(out, EvolutionProblem{From: old.Version, To: cur.Version, Rule: rule, Problem: fmt.Sprintf(format, args...)})
		}
		oldSch, err := avro.ParseWithCache(old.Schema, "", &avro.SchemaCache{})
		if err != nil {
			problem(RuleBackward, "%s does not parse: %v", old.File, err)
			continue
		}
		compat := avro.NewSchemaCompatibility()
		if err := compat.Compatible(curSch, oldSch); err != nil {
			problem(RuleBackward, "v%d cannot read records written with v%d: %v (a new field needs a default)", cur.Version, old.Version, err)
		}
		if err := compat.Compatible(oldSch, curSch); err != nil {
			problem(RuleForward, "readers pinned to v%d cannot read records written with v%d: %v (a removed field needs a default in v%d)", old.Version, cur.Version, err, old.Version)
		}
		oldFields := schemaFields(oldSch)
		for _, path := range sortedKeys(oldFields) {
			of := oldFields[path]
			cf, ok := curFields[path]
			switch {
			case !ok && !deprecated[path]:
				problem(RuleRemoved, "field %q of v%d is missing from v%d: never rename or remove a field outright; add the new field (with a default), mark the old one \"deprecated\": true in a release, and remove it in a later one", path, old.Version, cur.Version)
			case ok && cf.typ != of.typ:
				problem(RuleRetyped, "field %q changed type from %s (v%d) to %s (v%d): never retype a field; add a new one with the new type and deprecate this one", path, of.typ, old.Version, cf.typ, cur.Version)
			}
		}
	}
	return out
}

// deprecatedFields returns the paths of the fields any of releases marks
// "deprecated": true (releases that do not parse are reported elsewhere).
func deprecatedFields(releases []AvroRelease) map[string]bool {
	out := map[string]bool{}
	for _, r := range releases {
		sch, err := avro.ParseWithCache(r.Schema, "", &avro.SchemaCache{})
		if err != nil {
			continue
		}
		for path, f := range schemaFields(sch) {
			if f.deprecated {
				out[path] = true
			}
		}
	}
	return out
}

// field is what the evolution rules look at in one field.
type field struct {
	typ        string // the type's signature, logical types included, nested records by name
	deprecated bool
}

// schemaFields returns the fields of a record schema and of every record
// nested in it (through arrays and maps too), by dotted path
// ("enrichments.data").
func schemaFields(s avro.Schema) map[string]field {
	out := map[string]field{}
	seen := map[string]bool{}
	var walk func(path string, s avro.Schema)
	walk = func(path string, s avro.Schema) {
		switch s := deref(s).(type) {
		case *avro.RecordSchema:
			if seen[s.FullName()] {
				return
			}
			seen[s.FullName()] = true
			for _, f := range s.Fields() {
				p := strings.TrimPrefix(path+"."+f.Name(), ".")
				dep, _ := f.Prop("deprecated").(bool)
				out[p] = field{typ: signature(f.Type()), deprecated: dep}
				walk(p, f.Type())
			}
		case *avro.ArraySchema:
			walk(path, s.Items())
		case *avro.MapSchema:
			walk(path, s.Values())
		case *avro.UnionSchema:
			for _, t := range s.Types() {
				walk(path, t)
			}
		}
	}
	walk("", s)
	return out
}

// signature spells a type for comparison: primitives with their logical
// type, containers with their element types, named types by full name
// (a nested record's fields are compared one by one instead).
func signature(s avro.Schema) string {
	switch s := deref(s).(type) {
	case *avro.PrimitiveSchema:
		if l := s.Logical(); l != nil {
			return fmt.Sprintf("%s (%s)", s.Type(), l.Type())
		}
		return string(s.Type())
	case *avro.ArraySchema:
		return "array<" + signature(s.Items()) + ">"
	case *avro.MapSchema:
		return "map<" + signature(s.Values()) + ">"
	case *avro.UnionSchema:
		parts := make([]string, 0, len(s.Types()))
		for _, t := range s.Types() {
			parts = append(parts, signature(t))
		}
		return "union[" + strings.Join(parts, ", ") + "]"
	case *avro.FixedSchema:
		return fmt.Sprintf("fixed %s(%d)", s.FullName(), s.Size())
	case avro.NamedSchema:
		return string(s.Type()) + " " + s.FullName()
	default:
		return string(s.Type())
	}
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
