package normalize_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

var update = flag.Bool("update", false, "regenerate testdata/golden from the simulator and hand-written fixtures")

// goldenCase is one input and its normalized record, keyed by column.
type goldenCase struct {
	Name   string         `json:"name"`
	Input  string         `json:"input"` // exact bytes, as a JSON string
	Output map[string]any `json:"output"`
}

var testMeta = normalize.Meta{
	WorkspaceID: "ws_golden",
	SourceID:    "src_golden",
	SourceType:  "openai",
	SourceTTL:   90,
	ReceivedAt:  time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC),
	Tags:        map[string]string{"env": "test"},
}

// columns renders l as column → value, with rawLog elided when it equals
// the input (it always should; asserted separately).
func columns(t *testing.T, l schema.AuditLog, input []byte) map[string]any {
	t.Helper()
	out := map[string]any{}
	v := reflect.ValueOf(l)
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("avro")
		f := v.Field(i).Interface()
		if tm, ok := f.(time.Time); ok {
			f = tm.Format(time.RFC3339Nano)
		}
		out[name] = f
	}
	require.Equal(t, string(input), l.RawLog, "rawLog must be the input")
	out["rawLog"] = "<input>"
	// Round-trip through JSON so comparisons see what the file holds.
	b, err := json.Marshal(out)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	return back
}

// handWritten are fixtures the generator does not produce.
var handWritten = []struct{ name, input string }{
	{"reference live item", `{"object":"organization.audit_log","id":"audit_log-iakaJWnLdMLe89Ml5xayb4RJ","type":"login.succeeded","effective_at":1770616227,"project":{"id":"proj_abc","name":"Default project"},"actor":{"type":"session","session":{"user":{"id":"user-abc","email":"a@b.c"},"ip_address":"163.116.213.142","user_agent":"Mozilla/5.0","ja3":"353a03","ja4":"t13d691100_x","ip_address_details":{"country":"IN","city":"Mumbai","region":"Maharashtra","region_code":"MH","asn":"55256","latitude":"19.07283","longitude":"72.88261"}}}}`},
	{"old checkpoint_permission spelling", `{"id":"audit_log-cp1","type":"checkpoint_permission.created","effective_at":1745000000,"actor":{"type":"api_key","api_key":{"id":"key_abc","type":"service_account","service_account":{"id":"user-sa1"}}},"checkpoint_permission.created":{"id":"cp_1","data":{"project_id":"proj_x","fine_tuned_model_checkpoint":"ft:gpt"}}}`},
	{"unknown future type", `{"id":"audit_log-fut1","type":"future.widget.exploded","effective_at":1800000000,"actor":null,"future.widget.exploded":{"id":"widget_9","owner_ids":["user-1","user-2"],"nested":{"thing_id":"thing_3"}}}`},
	{"numeric ip details and ipv6", `{"id":"audit_log-v6","type":"project.updated","effective_at":1780000000,"actor":{"type":"session","session":{"user":{"id":"user-6","email":"six@example.com"},"ip_address":"2a10:50c0:1::42","ip_address_details":{"country":"in","asn":55256,"latitude":19.07,"longitude":72.88}}},"project.updated":{"id":"proj_6","changes_requested":{"title":"x"}}}`},
	{"no actor no project no payload", `{"id":"audit_log-bare","type":"scim.enabled","effective_at":1780000001}`},
	{"source field tolerated", `{"id":"audit_log-src","type":"tenant.user.looked_up","effective_at":1780000002,"source":"backfill","actor":{"type":"api_key","api_key":{"id":"key_u","type":"user","user":{"id":"user-u","email":"u@example.com"}}}}`},
}

// simulatorCases builds one event of every known type with a fixed seed.
func simulatorCases(t *testing.T) []struct{ name, input string } {
	t.Helper()
	fixed := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sim, err := openaisim.New(openaisim.Config{Seed: 7, Now: func() time.Time { return fixed }}, nil)
	require.NoError(t, err)
	var out []struct{ name, input string }
	for i, et := range openaisim.EventTypes() {
		evs := sim.GenerateSpec(openaisim.Spec{N: 1, Type: et.Name, EffectiveAt: fixed.Add(time.Duration(i) * time.Second)})
		require.Len(t, evs, 1)
		out = append(out, struct{ name, input string }{et.Name, string(evs[0].Raw)})
	}
	return out
}

func goldenPath(category string) string {
	return filepath.Join("testdata", "golden", category+".json")
}

func TestGolden(t *testing.T) {
	if *update {
		cases := append(simulatorCases(t), handWritten...)
		byCat := map[string][]goldenCase{}
		for _, c := range cases {
			r, err := normalize.Normalize([]byte(c.input), testMeta)
			require.NoError(t, err, c.name)
			cat := r.Log.Tags["category"]
			byCat[cat] = append(byCat[cat], goldenCase{Name: c.name, Input: c.input, Output: columns(t, r.Log, []byte(c.input))})
		}
		require.NoError(t, os.MkdirAll(filepath.Join("testdata", "golden"), 0o755))
		for cat, cs := range byCat {
			b, err := json.MarshalIndent(cs, "", "  ")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(goldenPath(cat), append(b, '\n'), 0o644))
		}
	}

	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no golden files: run go test -run TestGolden -update")
	seenTypes := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var cs []goldenCase
		require.NoError(t, json.Unmarshal(b, &cs), f)
		for _, c := range cs {
			t.Run(filepath.Base(f)+"/"+c.Name, func(t *testing.T) {
				r, err := normalize.Normalize([]byte(c.Input), testMeta)
				require.NoError(t, err)
				assert.Equal(t, c.Output, columns(t, r.Log, []byte(c.Input)))
				assert.Equal(t, filepath.Base(f), r.Log.Tags["category"]+".json")
				seenTypes[r.Log.EventName] = true
			})
		}
	}
	for _, et := range openaisim.EventTypes() {
		assert.True(t, seenTypes[et.Name], "golden files lack type %s: run -update", et.Name)
	}
}

// TestEveryKnownTypeNormalizes normalizes many generated events of every
// type (actors, projects and payload variants drawn at random) and checks
// the invariants of each record.
func TestEveryKnownTypeNormalizes(t *testing.T) {
	types := openaisim.EventTypes()
	require.Len(t, types, 147)
	sim, err := openaisim.New(openaisim.Config{Seed: 99, UnknownTypeRate: 0.1}, nil)
	require.NoError(t, err)
	for _, et := range types {
		for _, ev := range sim.GenerateSpec(openaisim.Spec{N: 8, Type: et.Name}) {
			r, err := normalize.Normalize(ev.Raw, testMeta)
			require.NoError(t, err, "%s: %s", et.Name, ev.Raw)
			l := r.Log
			assert.Equal(t, et.Name, l.EventName)
			assert.Equal(t, ev.ID, l.EventID)
			assert.Equal(t, normalize.RecordID(testMeta.SourceID, ev.ID), l.ID)
			assert.Equal(t, ev.EffectiveAt, l.EventTime.Unix())
			assert.NotEqual(t, normalize.CategoryOther, l.Tags["category"], et.Name)
			assert.NotEmpty(t, l.EventType)
			assert.NotEqual(t, et.Name, l.EventType)
			assert.Equal(t, ev.ProjectID, l.ProjectID)
			for _, id := range ev.ResourceIDs {
				assert.Contains(t, l.Resources, id, "%s resources", et.Name)
			}
			require.NoError(t, l.Validate())
		}
	}
	// Draws with unknown types go through the generic path.
	for _, ev := range sim.Generate(200) {
		r, err := normalize.Normalize(ev.Raw, testMeta)
		require.NoError(t, err, string(ev.Raw))
		assert.Equal(t, ev.Type, r.Log.EventName)
	}
}

func TestFamilyReadOnlyCategory(t *testing.T) {
	tests := []struct {
		typ, family, action, category string
		readOnly                      bool
	}{
		{"api_key.created", "api_key", "created", normalize.CategoryAPIKeys, false},
		{"login.succeeded", "login", "succeeded", normalize.CategoryAuthentication, true},
		{"logout.failed", "logout", "failed", normalize.CategoryAuthentication, true},
		{"checkpoint.permission.created", "checkpoint.permission", "created", normalize.CategoryProjects, false},
		{"checkpoint_permission.deleted", "checkpoint.permission", "deleted", normalize.CategoryProjects, false},
		{"tenant.group.member.added", "tenant.group.member", "added", normalize.CategoryUsers, false},
		{"ip_allowlist.config.activated", "ip_allowlist.config", "activated", normalize.CategoryAccessControl, false},
		{"certificates.activated", "certificates", "activated", normalize.CategoryAccessControl, false},
		{"tenant.user.looked_up", "tenant.user", "looked_up", normalize.CategoryUsers, true},
		{"tenant.principal_authentication_policy.resolved", "tenant.principal_authentication_policy", "resolved", normalize.CategoryAuthentication, true},
		{"tenant.workload_identity.access_token.issued", "tenant.workload_identity.access_token", "issued", normalize.CategoryAuthentication, false},
		{"future.report.viewed", "future.report", "viewed", normalize.CategoryOther, true},
		{"nodots", "nodots", "", normalize.CategoryOther, false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			assert.Equal(t, tt.family, normalize.Family(tt.typ))
			assert.Equal(t, tt.action, normalize.Action(tt.typ))
			assert.Equal(t, tt.category, normalize.Category(tt.typ))
			assert.Equal(t, tt.readOnly, normalize.ReadOnly(tt.typ))
		})
	}
}

func TestReadOnlyKnownTypesAreDocumentedOnes(t *testing.T) {
	var ro []string
	for _, et := range openaisim.EventTypes() {
		if normalize.ReadOnly(et.Name) {
			ro = append(ro, et.Name)
		}
	}
	slices.Sort(ro)
	assert.Equal(t, []string{"login.failed", "login.succeeded", "logout.failed", "logout.succeeded",
		"tenant.principal_authentication_policy.resolved", "tenant.user.looked_up"}, ro)
}

func TestPermanentErrors(t *testing.T) {
	big := make([]byte, normalize.MaxEventBytes+1)
	for i := range big {
		big[i] = ' '
	}
	tests := []struct {
		name, input, reason string
	}{
		{"not json", `hello`, normalize.ReasonInvalidJSON},
		{"truncated", `{"id":"a","type":"login.succeeded"`, normalize.ReasonInvalidJSON},
		{"array", `[1,2]`, normalize.ReasonInvalidJSON},
		{"empty", ``, normalize.ReasonInvalidJSON},
		{"missing id", `{"type":"login.succeeded","effective_at":1}`, normalize.ReasonMissingField},
		{"null id", `{"id":null,"type":"login.succeeded","effective_at":1}`, normalize.ReasonMissingField},
		{"empty type", `{"id":"a","type":"","effective_at":1}`, normalize.ReasonMissingField},
		{"missing effective_at", `{"id":"a","type":"login.succeeded"}`, normalize.ReasonMissingField},
		{"numeric id", `{"id":5,"type":"login.succeeded","effective_at":1}`, normalize.ReasonWrongType},
		{"string effective_at", `{"id":"a","type":"x.y","effective_at":"1770616227"}`, normalize.ReasonWrongType},
		{"fractional effective_at", `{"id":"a","type":"x.y","effective_at":1.5}`, normalize.ReasonWrongType},
		{"negative effective_at", `{"id":"a","type":"x.y","effective_at":-5}`, normalize.ReasonOutOfRange},
		{"zero effective_at", `{"id":"a","type":"x.y","effective_at":0}`, normalize.ReasonOutOfRange},
		{"zero effective_at as a float", `{"id":"a","type":"x.y","effective_at":0.0}`, normalize.ReasonOutOfRange},
		{"negative zero effective_at", `{"id":"a","type":"x.y","effective_at":-0}`, normalize.ReasonOutOfRange},
		{"huge effective_at", `{"id":"a","type":"x.y","effective_at":99999999999}`, normalize.ReasonOutOfRange},
		{"actor string", `{"id":"a","type":"x.y","effective_at":1,"actor":"me"}`, normalize.ReasonWrongType},
		{"ip number", `{"id":"a","type":"x.y","effective_at":1,"actor":{"type":"session","session":{"ip_address":7}}}`, normalize.ReasonWrongType},
		{"project array", `{"id":"a","type":"x.y","effective_at":1,"project":[]}`, normalize.ReasonWrongType},
		{"invalid ip", `{"id":"a","type":"x.y","effective_at":1,"actor":{"type":"session","session":{"ip_address":"999.1.1.1"}}}`, normalize.ReasonInvalidIP},
		{"ip with zone", `{"id":"a","type":"x.y","effective_at":1,"actor":{"type":"session","session":{"ip_address":"fe80::1%eth0"}}}`, normalize.ReasonInvalidIP},
		{"invalid utf8", "{\"id\":\"a\xff\",\"type\":\"x.y\",\"effective_at\":1}", normalize.ReasonInvalidUTF8},
		{"too large", string(big), normalize.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := normalize.Normalize([]byte(tt.input), testMeta)
			require.Error(t, err)
			assert.Equal(t, tt.reason, normalize.ReasonOf(err), err.Error())
			assert.Contains(t, normalize.Reasons(), tt.reason)
		})
	}
}

func TestParseMeta(t *testing.T) {
	fallback := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	static := map[string]string{"team": "sec", "env": "prod"}
	tests := []struct {
		name    string
		headers map[string]string
		want    normalize.Meta
		reason  string
	}{
		{
			name: "all headers",
			headers: map[string]string{"workspace_id": "ws", "source_id": "src", "source_type": "openai", "source_ttl": "30",
				"received_at": "2026-11-20T12:00:00.5Z", "tags": `{"env":"staging","x":"y"}`},
			want: normalize.Meta{WorkspaceID: "ws", SourceID: "src", SourceType: "openai", SourceTTL: 30,
				ReceivedAt: time.Date(2026, 11, 20, 12, 0, 0, 5e8, time.UTC), Tags: map[string]string{"team": "sec", "env": "staging", "x": "y"}},
		},
		{
			name:    "defaults",
			headers: map[string]string{},
			want:    normalize.Meta{SourceType: "openai", ReceivedAt: fallback, Tags: static},
		},
		{name: "bad ttl", headers: map[string]string{"source_ttl": "-1"}, reason: normalize.ReasonInvalidHeader},
		{name: "bad received_at", headers: map[string]string{"received_at": "yesterday"}, reason: normalize.ReasonInvalidHeader},
		{name: "bad tags", headers: map[string]string{"tags": `{"a":1}`}, reason: normalize.ReasonInvalidHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := func(k string) (string, bool) { v, ok := tt.headers[k]; return v, ok }
			m, err := normalize.ParseMeta(get, fallback, static)
			if tt.reason != "" {
				assert.Equal(t, tt.reason, normalize.ReasonOf(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, m)
		})
	}
}

func TestRecordIDDeterministic(t *testing.T) {
	a := normalize.RecordID("src_1", "audit_log-x")
	assert.Equal(t, a, normalize.RecordID("src_1", "audit_log-x"))
	assert.NotEqual(t, a, normalize.RecordID("src_2", "audit_log-x"))
	assert.NotEqual(t, normalize.RecordID("a/b", "c"), normalize.RecordID("a", "b/c")+"x")
	assert.Len(t, a, 32)
}

func TestLargePayloadResources(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id":"a","type":"x.y","effective_at":1,"x.y":{"member_ids":[`)
	const n = 40000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"u%d"`, i%(n/2))
	}
	b.WriteString(`]}}`)
	r, err := normalize.Normalize([]byte(b.String()), testMeta)
	require.NoError(t, err)
	assert.Len(t, r.Log.Resources, n/2, "deduplicated")
}
