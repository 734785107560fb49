package schema_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

// TestAvroReleasesEvolve is the compatibility gate of `make test`: the
// current schema must be BACKWARD and FORWARD compatible with every
// released version, keep every field's type and drop only deprecated
// fields, so that no registry (whatever its compatibility level) and no
// consumer pinned to an earlier version is ever broken.
func TestAvroReleasesEvolve(t *testing.T) {
	releases, err := schema.AvroReleases()
	require.NoError(t, err)
	require.NotEmpty(t, releases)
	cur := releases[len(releases)-1]
	assert.Equal(t, schemas.AvroVersion, cur.Version)
	assert.Equal(t, schemas.AvroSchema, cur.Schema)
	for _, p := range schema.CheckEvolution(releases) {
		t.Errorf("%s", p)
	}
	t.Logf("v%d checked against %d earlier release(s)", cur.Version, len(releases)-1)
}

// TestAvroReleasesAreFrozen pins every release file's SHA-256: a released
// version is in users' registries and must never change. -update records
// the current version (and only it); an earlier one that changed fails.
func TestAvroReleasesAreFrozen(t *testing.T) {
	releases, err := schema.AvroReleases()
	require.NoError(t, err)
	golden := filepath.Join("testdata", "golden", "avro_releases.sha256")
	pinned := map[string]string{}
	if b, err := os.ReadFile(golden); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			sum, file, ok := strings.Cut(line, "  ")
			require.True(t, ok, "malformed line %q in %s", line, golden)
			pinned[file] = sum
		}
	} else {
		require.True(t, *update, "%s is missing: run go test ./schema -run Frozen -update", golden)
	}
	var lines []string
	for _, r := range releases {
		s := sha256.Sum256([]byte(r.Schema))
		sum, file := hex.EncodeToString(s[:]), path.Base(r.File)
		current := r.Version == releases[len(releases)-1].Version
		switch {
		case pinned[file] == "" || (current && *update):
			require.True(t, *update, "%s is not pinned: run go test ./schema -run Frozen -update and commit %s", file, golden)
		case pinned[file] != sum && current:
			t.Errorf("%s changed: review, then go test ./schema -run Frozen -update", file)
		case pinned[file] != sum:
			t.Errorf("%s was released and changed: restore it and put the change into v%d (or a new version)", file, releases[len(releases)-1].Version)
		}
		if pinned[file] != "" && !current {
			sum = pinned[file]
		}
		lines = append(lines, sum+"  "+file)
	}
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	}
}

// edit returns src with its top-level fields (and the record name)
// rewritten by f, which receives the fields as JSON objects.
func edit(t *testing.T, src string, f func(rec map[string]any, fields []any) []any) string {
	t.Helper()
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(src), &rec))
	rec["fields"] = f(rec, rec["fields"].([]any))
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	return string(b)
}

func fieldNamed(fields []any, name string) map[string]any {
	for _, f := range fields {
		if m := f.(map[string]any); m["name"] == name {
			return m
		}
	}
	panic("no field " + name)
}

func withoutField(fields []any, name string) []any {
	var out []any
	for _, f := range fields {
		if f.(map[string]any)["name"] != name {
			out = append(out, f)
		}
	}
	return out
}

func TestCheckEvolutionRejectsIncompatibleEdits(t *testing.T) {
	v1 := schemas.AvroSchema
	add := func(name string, field map[string]any) func(map[string]any, []any) []any {
		return func(_ map[string]any, fs []any) []any {
			field["name"] = name
			return append(fs, field)
		}
	}
	// An earlier release with a field that has no default: the table's own
	// schema has none (the contract checker requires defaults), but a
	// release of another shape may.
	withLegacy := edit(t, v1, add("legacy", map[string]any{"type": "string"}))
	deprecate := func(name string) func(map[string]any, []any) []any {
		return func(_ map[string]any, fs []any) []any {
			fieldNamed(fs, name)["deprecated"] = true
			return fs
		}
	}
	type want struct {
		from       int
		rule, text string
	}
	for _, tc := range []struct {
		name     string
		releases []string // oldest first; the last is the candidate
		want     []want
	}{
		{"add a field with a default", []string{v1, edit(t, v1, add("userAgent", map[string]any{"type": "string", "default": ""}))}, nil},
		{"rename a field", []string{v1, edit(t, v1, func(_ map[string]any, fs []any) []any {
			fieldNamed(fs, "eventID")["name"] = "eventId"
			return fs
		})}, []want{{1, schema.RuleRemoved, `field "eventID" of v1 is missing from v2: never rename or remove a field outright`}}},
		{"rename a field with an alias", []string{v1, edit(t, v1, func(_ map[string]any, fs []any) []any {
			f := fieldNamed(fs, "eventID")
			f["name"], f["aliases"] = "eventId", []any{"eventID"}
			return fs
		})}, []want{{1, schema.RuleRemoved, `field "eventID" of v1 is missing from v2`}}},
		{"retype string to long", []string{v1, edit(t, v1, func(_ map[string]any, fs []any) []any {
			f := fieldNamed(fs, "srcCity")
			f["type"], f["default"] = "long", 0
			return fs
		})}, []want{
			{1, schema.RuleBackward, "v2 cannot read records written with v1: reader schema long not compatible with writer schema string"},
			{1, schema.RuleForward, "readers pinned to v1 cannot read records written with v2: reader schema string not compatible with writer schema long"},
			{1, schema.RuleRetyped, `field "srcCity" changed type from string (v1) to long (v2): never retype a field`},
		}},
		{"widen long to double (Avro promotes it one way only)", []string{v1, edit(t, v1, func(_ map[string]any, fs []any) []any {
			f := fieldNamed(fs, "sourceTTL")
			f["type"], f["default"] = "double", 0.0
			return fs
		})}, []want{
			{1, schema.RuleForward, "reader schema long not compatible with writer schema double"},
			{1, schema.RuleRetyped, `field "sourceTTL" changed type from long (v1) to double (v2)`},
		}},
		{"drop a logical type (Avro's check does not see it)", []string{v1, edit(t, v1, func(_ map[string]any, fs []any) []any {
			fieldNamed(fs, "receivedAt")["type"] = "long"
			return fs
		})}, []want{{1, schema.RuleRetyped, `field "receivedAt" changed type from long (timestamp-millis) (v1) to long (v2)`}}},
		{"new field without a default", []string{v1, edit(t, v1, add("userAgent", map[string]any{"type": "string"}))}, []want{
			{1, schema.RuleBackward, "v2 cannot read records written with v1: reader field userAgent is missing in writer schema and has no default (a new field needs a default)"},
		}},
		{"removed field without a default", []string{withLegacy, edit(t, withLegacy, func(_ map[string]any, fs []any) []any {
			return withoutField(fs, "legacy")
		})}, []want{
			{1, schema.RuleForward, "readers pinned to v1 cannot read records written with v2: reader field legacy is missing in writer schema and has no default"},
			{1, schema.RuleRemoved, `field "legacy" of v1 is missing from v2`},
		}},
		{"deprecate, then remove", []string{v1, edit(t, v1, deprecate("dstUserType")), edit(t, v1, func(_ map[string]any, fs []any) []any {
			return withoutField(fs, "dstUserType")
		})}, nil},
		{"remove in the release that deprecates", []string{v1, edit(t, v1, func(_ map[string]any, fs []any) []any {
			return withoutField(fs, "dstUserType")
		})}, []want{{1, schema.RuleRemoved, `field "dstUserType" of v1 is missing from v2`}}},
		{"rename a nested field", []string{v1, strings.Replace(v1, `{"name": "provider", "type": "string", "default": ""}`, `{"name": "source", "type": "string", "default": ""}`, 1)},
			[]want{{1, schema.RuleRemoved, `field "enrichments.provider" of v1 is missing from v2`}}},
		{"rename the record", []string{v1, edit(t, v1, func(rec map[string]any, fs []any) []any {
			rec["name"] = "AuditRecord"
			return fs
		})}, []want{
			{1, schema.RuleBackward, "names do not match"},
			{1, schema.RuleForward, "names do not match"},
		}},
		{"an incompatible v3 is checked against v1 and v2", []string{v1, edit(t, v1, add("userAgent", map[string]any{"type": "string", "default": ""})),
			edit(t, v1, add("userAgent", map[string]any{"type": "long", "default": 0}))}, []want{
			{2, schema.RuleBackward, "v3 cannot read records written with v2: reader schema long not compatible with writer schema string"},
			{2, schema.RuleForward, "readers pinned to v2 cannot read records written with v3"},
			{2, schema.RuleRetyped, `field "userAgent" changed type from string (v2) to long (v3)`},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs []schema.AvroRelease
			for i, s := range tc.releases {
				rs = append(rs, schema.AvroRelease{Version: i + 1, File: fmt.Sprintf("avro/openai_audit_logs.v%d.avsc", i+1), Schema: s})
			}
			got := schema.CheckEvolution(rs)
			require.Len(t, got, len(tc.want), "%v", got)
			for i, w := range tc.want {
				assert.Equal(t, w.from, got[i].From, "%s", got[i])
				assert.Equal(t, len(rs), got[i].To, "%s", got[i])
				assert.Equal(t, w.rule, got[i].Rule, "%s", got[i])
				assert.Contains(t, got[i].Problem, w.text)
			}
		})
	}
}
