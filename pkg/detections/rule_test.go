package detections_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/detections"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// The rules the project promises (docs/detections.md).
var requiredRules = []string{
	"credential_stuffing", "brute_force_success", "privileged_role_assigned", "api_key_elevated_scopes",
	"ip_allowlist_changed", "scim_changed", "org_security_settings_changed", "login_new_country",
	"impossible_travel", "mass_deletion", "credential_creation_burst", "credential_creation_after_dormancy",
	"invite_external_domain", "certificate_changed", "rate_limit_raised", "deleted_principal_key_activity",
	// Posture and audit completeness (docs/inventory.md).
	"api_key_unused", "admin_api_key_long_lived", "api_key_orphaned", "owners_beyond_threshold",
	"invite_pending_too_long", "certificate_expiring", "project_without_rate_limits", "audit_gap",
}

func TestEmbeddedRules(t *testing.T) {
	rules, err := detections.Rules()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(rules), 15)
	seen := map[string]bool{}
	for _, r := range rules {
		t.Run(r.ID, func(t *testing.T) {
			assert.False(t, seen[r.ID], "unique id")
			seen[r.ID] = true
			assert.Equal(t, r.ID+".sql", r.File)
			assert.NotEmpty(t, r.Title)
			assert.True(t, r.Severity.Valid(), "severity %q", r.Severity)
			assert.Regexp(t, `^T[0-9]{4}(\.[0-9]{3})?$`, r.MITRE.ID)
			assert.NotEmpty(t, r.MITRE.Name)
			assert.NotEmpty(t, r.Description)
			assert.NotEmpty(t, r.FalsePositives)
			assert.Len(t, r.Checksum, 64)
			for _, k := range r.Knobs {
				assert.NotEmpty(t, k.Description, "knob %s", k.Name)
			}
			assert.Equal(t, []string{detections.KnobEnabled, detections.KnobLookback}, []string{r.Knobs[0].Name, r.Knobs[1].Name}, "common knobs first")
			v, err := detections.Options{}.RenderView(r)
			require.NoError(t, err, "every knob declared, typed and read")
			assert.Contains(t, v.Create, "REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`")
			assert.Regexp(t, "FROM `default`.`(openai_audit_logs|openai_inventory_[a-z]+)`", v.Create, "reads the audit log or the inventory")
			assert.Contains(t, v.Create, "name = 'lookback_minutes'", "considers recent events, or current inventories, only")
			assert.Len(t, v.Checksum, 64)
		})
	}
	for _, id := range requiredRules {
		assert.True(t, seen[id], "rule %s is shipped", id)
	}
	if _, ok := ruleCases[""]; ok {
		t.Fatal("empty rule id in ruleCases")
	}
	for _, r := range rules {
		var pos, neg bool
		for _, c := range ruleCases[r.ID] {
			pos = pos || len(c.want) > 0
			neg = neg || len(c.want) == 0
		}
		for _, c := range invCases[r.ID] {
			pos = pos || len(c.want) > 0
			neg = neg || len(c.want) == 0
		}
		if r.ID == "audit_gap" { // TestAuditGap: the dropped event, and every change explained
			pos, neg = true, true
		}
		assert.True(t, pos && neg, "rule %s has a positive and a negative case in TestRules", r.ID)
	}
}

const validRule = `-- id: sample_rule
-- title: A sample
-- severity: LOW
-- mitre:
--   id: T1078
--   name: Valid Accounts
-- description: >
--   Something happened.
-- false_positives:
--   - Sometimes.
-- knobs:
--   - name: min_count
--     type: uint
--     default: 5
--     description: how many
SELECT 'LOW' AS severity FROM {{logs}} WHERE {{recent}} AND 1 < {{uint "min_count"}}
`

func TestParseRule(t *testing.T) {
	r, err := detections.ParseRule("sample_rule.sql", []byte(validRule))
	require.NoError(t, err)
	assert.Equal(t, "sample_rule", r.ID)
	assert.Equal(t, detections.SeverityLow, r.Severity)
	assert.Equal(t, detections.Technique{ID: "T1078", Name: "Valid Accounts"}, r.MITRE)
	assert.Equal(t, "Something happened.", r.Description)
	assert.Equal(t, map[string]string{"enabled": "true", "lookback_minutes": "120", "min_count": "5"}, r.Defaults())
	assert.True(t, strings.HasPrefix(r.Query, "SELECT 'LOW'"))

	replace := func(old, new string) string { return strings.Replace(validRule, old, new, 1) }
	tests := []struct {
		name, src, want string
	}{
		{"no header", "SELECT 1", "no YAML header"},
		{"bad yaml", "-- id: [\nSELECT 1", "parsing the YAML header"},
		{"unknown key", replace("-- title: A sample", "-- title: A sample\n-- owner: me"), "field owner not found"},
		{"bad id", replace("id: sample_rule", "id: Sample-Rule"), `id "Sample-Rule": want lower_snake_case`},
		{"no title", replace("-- title: A sample\n", ""), "title: required"},
		{"bad severity", replace("severity: LOW", "severity: SEVERE"), `severity "SEVERE": want one of`},
		{"bad technique", replace("id: T1078", "id: 1078"), `mitre.id "1078"`},
		{"no technique name", replace("  name: Valid Accounts", "  name: ''"), "mitre.name: required"},
		{"no description", replace("-- description: >\n--   Something happened.\n", ""), "description: required"},
		{"no false positives", replace("-- false_positives:\n--   - Sometimes.\n", ""), "false_positives: list at least one"},
		{"bad knob type", replace("type: uint", "type: int"), `type "int": want uint`},
		{"bad knob default", replace("default: 5", "default: five"), `default: "five" is not a uint32`},
		{"knob without description", replace("     description: how many", "     description: ''"), `knob "min_count": description: required`},
		{"common knob redeclared", replace("name: min_count", "name: enabled"), `"enabled": declared twice`},
		{"no query", strings.Split(validRule, "SELECT")[0], "no SELECT after the header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := detections.ParseRule("sample_rule.sql", []byte(tt.src))
			require.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, err, "detection rule sample_rule.sql: ")
		})
	}
}

func TestRulesFromFS(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	rules, err := detections.RulesFromFS(fstest.MapFS{"sample_rule.sql": file(validRule), "README.md": file("x")})
	require.NoError(t, err)
	require.Len(t, rules, 1)

	_, err = detections.RulesFromFS(fstest.MapFS{"other.sql": file(validRule)})
	require.ErrorContains(t, err, `id "sample_rule" must equal the file name "other"`)
	_, err = detections.RulesFromFS(fstest.MapFS{})
	require.ErrorContains(t, err, "no detection rules")
	_, err = detections.RulesFromFS(fstest.MapFS{"a_rule.sql": file("SELECT 1"), "b_rule.sql": file("-- id: [")})
	require.ErrorContains(t, err, "a_rule.sql: no YAML header")
	require.ErrorContains(t, err, "b_rule.sql: parsing the YAML header", "every problem is reported")
}

func TestRenderViewChecksKnobs(t *testing.T) {
	tests := []struct{ name, query, want string }{
		{"undeclared", `SELECT {{uint "nope"}} FROM {{logs}} WHERE {{recent}} AND {{uint "min_count"}} > 0`, `knob "nope" is not declared`},
		{"wrong type", `SELECT 1 FROM {{logs}} WHERE {{recent}} AND {{str "min_count"}} != ''`, `knob "min_count" is declared uint but read as string`},
		{"unused", `SELECT 1 FROM {{logs}} WHERE {{recent}}`, `knob "min_count" is declared but never read`},
		{"no lookback", `SELECT 1 FROM {{logs}} WHERE {{uint "min_count"}} > 0`, `knob "lookback_minutes" is declared but never read`},
		{"two statements", `SELECT 1 FROM {{logs}} WHERE {{recent}} AND {{uint "min_count"}} > 0; SELECT 2`, "want exactly one SELECT, got 2"},
		{"unknown function", `SELECT {{nope}}`, "parsing the query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Split(validRule, "SELECT")[0] + tt.query
			r, err := detections.ParseRule("sample_rule.sql", []byte(src))
			require.NoError(t, err)
			_, err = detections.Options{}.RenderView(r)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestGolden pins the rendered SQL of every object (single node, default
// options). After an intended change: go test ./detections -run Golden
// -update, and review the diff.
func TestGolden(t *testing.T) {
	stmts, err := detections.Options{}.Statements()
	require.NoError(t, err)
	got := strings.Join(stmts, ";\n\n") + ";\n"
	path := filepath.Join("testdata", "golden", "statements.sql")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./detections -run Golden -update")
	assert.Equal(t, string(want), got)
}

func FuzzParseRule(f *testing.F) {
	f.Add([]byte(validRule))
	f.Add([]byte("-- id: x\nSELECT 1"))
	f.Add([]byte("--\n--\n"))
	f.Add([]byte("-- knobs:\n--   - {name: a, type: uint, default: '1', description: d}\nSELECT"))
	f.Fuzz(func(t *testing.T, src []byte) {
		r, err := detections.ParseRule("fuzz.sql", src)
		if err != nil {
			return
		}
		// A rule that parses is complete.
		if r.ID == "" || r.Title == "" || !r.Severity.Valid() || r.Description == "" || len(r.FalsePositives) == 0 || strings.TrimSpace(r.Query) == "" {
			t.Fatalf("incomplete rule accepted: %+v", r)
		}
		for _, k := range r.Knobs {
			if k.Description == "" {
				t.Fatalf("knob without description accepted: %+v", k)
			}
		}
		_, _ = detections.Options{}.RenderView(r)
	})
}
