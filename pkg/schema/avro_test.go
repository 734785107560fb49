package schema_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// sample returns a record with every field set to a distinct value.
func sample() schema.AuditLog {
	ts := time.Date(2026, 5, 1, 12, 30, 45, 123_000_000, time.UTC)
	return schema.AuditLog{
		WorkspaceID: "ws-1", SourceID: "src-1", SourceType: "openai", SourceTTL: 365,
		ReceivedAt: ts.Add(time.Minute), ID: "a1b2c3", EventTime: ts, EventName: "login.failed",
		EventID: "audit_log-PaILxsC4mrLvPYdakaGGtaMy", SrcIP: "163.116.213.142", SrcASCountryCode: "US",
		SrcASNumber: 4294967295, SrcASOrganization: "Example AS", SrcCity: "Austin", SrcConnectionType: "Corporate",
		SrcISP: "Example ISP", SrcLatitude: 30.2672, SrcLongitude: -97.7431, SrcUserType: "business",
		DstIP: "10.0.0.1", DstASCountryCode: "DE", DstASNumber: 3320, DstASOrganization: "DTAG", DstCity: "Berlin",
		DstConnectionType: "Cable/DSL", DstISP: "Telekom", DstLatitude: 52.52, DstLongitude: 13.405, DstUserType: "residential",
		Actor:       map[string]string{"type": "session", "user.email": "a@b.c"},
		Tags:        map[string]string{"category": "authentication"},
		Resources:   []string{"user-1", "proj_1"},
		ServiceName: "openai",
		Enrichments: []schema.Enrichment{{Data: map[string]string{"asn": "4294967295"}, Name: "geo", Provider: "maxmind", Type: "ip", Value: "163.116.213.142"}},
		ReadOnly:    true, RawLog: `{"id":"audit_log-PaILxsC4mrLvPYdakaGGtaMy","type":"login.failed"}`,
		EventType: "login", ActorType: "session", ActorIP: "163.116.213.142", ActorUserID: "user-1",
		ActorUserEmail: "a@b.c", APIKeyID: "key_1", APIKeyType: "user", ServiceAccountID: "svc_1",
		ProjectID: "proj_1", ProjectName: "Default project",
	}
}

func TestAvroCanonicalFormGolden(t *testing.T) {
	sch, err := schema.ParseAvro()
	require.NoError(t, err)
	var pretty strings.Builder
	enc := json.NewEncoder(&pretty)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(json.RawMessage(sch.String())))

	golden := filepath.Join("testdata", "golden", "openai_audit_logs.canonical.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(pretty.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -run Golden -update to create it")
	assert.Equal(t, string(want), pretty.String(), "the Avro schema changed: review, then go test -run Golden -update")
}

func TestAvroRoundTripThroughSerde(t *testing.T) {
	ctx := context.Background()
	_, cl := newRegistry(t)
	serde, id, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
	require.NoError(t, err)

	in := sample()
	b, err := serde.Encode(in)
	require.NoError(t, err)
	require.Greater(t, len(b), 5)
	assert.Equal(t, byte(0), b[0], "magic byte")
	assert.Equal(t, uint32(id), binary.BigEndian.Uint32(b[1:5]), "schema id")

	var out schema.AuditLog
	require.NoError(t, serde.Decode(b, &out))
	assert.Equal(t, in, out)

	// The Decoder reads the same bytes through the registry.
	dec, err := schema.NewDecoder(cl, 0)
	require.NoError(t, err)
	out = schema.AuditLog{Tags: map[string]string{"stale": "x"}}
	gotID, err := dec.Decode(ctx, b, &out)
	require.NoError(t, err)
	assert.Equal(t, id, gotID)
	assert.Equal(t, in, out, "Decode replaces the previous contents")
}

func TestSerdeEncodeValidates(t *testing.T) {
	_, cl := newRegistry(t)
	serde, _, err := schema.NewSerde(context.Background(), cl, contract.SubjectEnriched, true)
	require.NoError(t, err)
	bad := sample()
	bad.SrcASNumber = 1 << 32
	_, err = serde.Encode(bad)
	require.ErrorIs(t, err, schema.ErrInvalidRecord)
}

func TestNewSerdeRegistration(t *testing.T) {
	ctx := context.Background()

	t.Run("register is idempotent and sets BACKWARD", func(t *testing.T) {
		_, cl := newRegistry(t)
		res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}) // global
		require.NoError(t, res[0].Err)

		_, id1, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
		require.NoError(t, err)
		_, id2, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
		require.NoError(t, err)
		assert.Equal(t, id1, id2)

		got := cl.Compatibility(ctx, contract.SubjectEnriched)
		require.NoError(t, got[0].Err)
		assert.Equal(t, sr.CompatBackward, got[0].Level)
		vs, err := cl.SubjectVersions(ctx, contract.SubjectEnriched)
		require.NoError(t, err)
		assert.Equal(t, []int{1}, vs)
	})

	t.Run("a stricter level is kept", func(t *testing.T) {
		_, cl := newRegistry(t)
		res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}, contract.SubjectEnriched)
		require.NoError(t, res[0].Err)
		_, _, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
		require.NoError(t, err)
		got := cl.Compatibility(ctx, contract.SubjectEnriched)
		require.NoError(t, got[0].Err)
		assert.Equal(t, sr.CompatFullTransitive, got[0].Level)
	})

	t.Run("lookup only fails clearly when missing", func(t *testing.T) {
		_, cl := newRegistry(t)
		_, _, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, false)
		require.ErrorIs(t, err, schema.ErrNotRegistered)
		assert.Contains(t, err.Error(), contract.SubjectEnriched)
	})

	t.Run("lookup only finds the registered id", func(t *testing.T) {
		reg, cl := newRegistry(t)
		_, _, err := reg.RegisterSchema(contract.SubjectEnriched, sr.Schema{Schema: `"string"`})
		require.NoError(t, err)
		want, _, err := reg.RegisterSchema(contract.SubjectEnriched, schema.RegistrySchema())
		require.NoError(t, err)
		_, id, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, false)
		require.NoError(t, err)
		assert.Equal(t, want, id)
	})
}

// evolved returns the embedded schema with fields removed and appended.
func evolved(t *testing.T, drop []string, add ...map[string]any) string {
	t.Helper()
	return edit(t, schemas.AvroSchema, func(_ map[string]any, fields []any) []any {
		for _, d := range drop {
			fields = withoutField(fields, d)
		}
		for _, f := range add {
			fields = append(fields, f)
		}
		return fields
	})
}

// wire encodes v with writer schema text and frames it with id.
func wire(t *testing.T, id int, writer string, v any) []byte {
	t.Helper()
	ws, err := avro.ParseWithCache(writer, "", &avro.SchemaCache{})
	require.NoError(t, err)
	body, err := avro.Marshal(ws, v)
	require.NoError(t, err)
	return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body...)
}

// newerLog is an AuditLog with one more field, as a newer release writes it.
type newerLog struct {
	schema.AuditLog
	UserAgent string `avro:"userAgent"`
}

func TestDecoderReadsOtherWriterSchemas(t *testing.T) {
	ctx := context.Background()
	reg, cl := newRegistry(t)
	dec, err := schema.NewDecoder(cl, 4)
	require.NoError(t, err)
	in := sample()

	t.Run("older writer without fields gets the defaults", func(t *testing.T) {
		older := evolved(t, []string{"enrichments", "tags", "projectName", "srcASNumber", "eventTime"})
		id, _, err := reg.RegisterSchema(contract.SubjectEnriched, sr.Schema{Schema: older})
		require.NoError(t, err)

		var out schema.AuditLog
		_, err = dec.Decode(ctx, wire(t, id, older, in), &out)
		require.NoError(t, err)

		want := in
		want.Enrichments = []schema.Enrichment{}
		want.Tags = map[string]string{}
		want.ProjectName = ""
		want.SrcASNumber = 0
		want.EventTime = time.UnixMilli(0).UTC()
		assert.Equal(t, want, out)
	})

	t.Run("newer writer with a field no release knows waits", func(t *testing.T) {
		newer := evolved(t, nil, map[string]any{"name": "userAgent", "type": "string", "default": ""})
		id, _, err := reg.RegisterSchema(contract.SubjectEnriched, sr.Schema{Schema: newer})
		require.NoError(t, err)
		var out schema.AuditLog
		_, err = dec.Decode(ctx, wire(t, id, newer, newerLog{AuditLog: in, UserAgent: "curl/8"}), &out)
		require.ErrorIs(t, err, schema.ErrNewerWriter)
		assert.Contains(t, err.Error(), "has fields this release (schema v1) does not know: userAgent")
		for _, perm := range []error{schema.ErrMalformed, schema.ErrUnknownSchema, schema.ErrIncompatibleSchema} {
			assert.NotErrorIs(t, err, perm, "transient: a newer loader takes the record over")
		}
	})

	t.Run("writer with a field an earlier release had (deprecated, removed) is read without it", func(t *testing.T) {
		older := evolved(t, nil, map[string]any{"name": "userAgent", "type": "string", "default": ""})
		d, err := schema.NewDecoderWithReleases(cl, []schema.AvroRelease{{Version: 1, Schema: older}, {Version: 2, Schema: schemas.AvroSchema}}, 0)
		require.NoError(t, err)
		id, _, err := reg.RegisterSchema(contract.SubjectEnriched, sr.Schema{Schema: older})
		require.NoError(t, err)
		var out schema.AuditLog
		_, err = d.Decode(ctx, wire(t, id, older, newerLog{AuditLog: in, UserAgent: "curl/8"}), &out)
		require.NoError(t, err)
		assert.Equal(t, in, out)
	})

	t.Run("incompatible writer", func(t *testing.T) {
		var s map[string]any
		require.NoError(t, json.Unmarshal([]byte(schemas.AvroSchema), &s))
		s["fields"].([]any)[0].(map[string]any)["type"] = "boolean" // workspaceID
		b, err := json.Marshal(s)
		require.NoError(t, err)
		id, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: string(b)})
		require.NoError(t, err)

		var out schema.AuditLog
		_, err = dec.Decode(ctx, []byte{0, 0, 0, 0, byte(id), 0}, &out)
		require.ErrorIs(t, err, schema.ErrIncompatibleSchema)
	})

	t.Run("unknown id", func(t *testing.T) {
		var out schema.AuditLog
		_, err := dec.Decode(ctx, []byte{0, 0, 0, 0x7f, 0xff, 0}, &out)
		require.ErrorIs(t, err, schema.ErrUnknownSchema)
	})

	t.Run("malformed", func(t *testing.T) {
		serde, id, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
		require.NoError(t, err)
		good, err := serde.Encode(in)
		require.NoError(t, err)
		for name, b := range map[string][]byte{
			"empty":     nil,
			"short":     {0, 0, 0},
			"bad magic": append([]byte{1}, good[1:]...),
			"truncated": good[:len(good)/2],
		} {
			var out schema.AuditLog
			gotID, err := dec.Decode(ctx, b, &out)
			require.ErrorIs(t, err, schema.ErrMalformed, name)
			if name == "truncated" {
				assert.Equal(t, id, gotID)
			}
		}
	})

	t.Run("registry down is transient", func(t *testing.T) {
		_, down := newRegistry(t)
		d, err := schema.NewDecoder(down, 0)
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		var out schema.AuditLog
		_, err = d.Decode(cctx, []byte{0, 0, 0, 0, 1, 0}, &out)
		require.Error(t, err)
		for _, perm := range []error{schema.ErrMalformed, schema.ErrUnknownSchema, schema.ErrIncompatibleSchema} {
			assert.NotErrorIs(t, err, perm)
		}
	})
}

func TestDecoderCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	reg, cl := newRegistry(t)
	in := sample()
	var frames [][]byte
	var extras []map[string]any
	for i := range 4 {
		extras = append(extras, map[string]any{"name": "extra" + string(rune('a'+i)), "type": "string", "default": ""})
	}
	// An earlier release had the extra fields: writers with them decode.
	dec, err := schema.NewDecoderWithReleases(cl, []schema.AvroRelease{{Version: 1, Schema: evolved(t, nil, extras...)}, {Version: 2, Schema: schemas.AvroSchema}}, 2)
	require.NoError(t, err)
	for _, extra := range extras {
		w := evolved(t, nil, extra)
		id, _, err := reg.RegisterSchema(contract.SubjectEnriched, sr.Schema{Schema: w})
		require.NoError(t, err)
		frames = append(frames, wire(t, id, w, in)) // hamba writes the default for the missing field
	}
	var fetches atomic.Int32
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			fetches.Add(1)
		}
		return false
	})
	decodeAll := func(fs ...[]byte) {
		t.Helper()
		for _, f := range fs {
			var out schema.AuditLog
			_, err := dec.Decode(ctx, f, &out)
			require.NoError(t, err)
			assert.Equal(t, in, out)
		}
	}
	decodeAll(frames[0], frames[1], frames[0], frames[1])
	assert.Equal(t, int32(2), fetches.Load(), "cached after the first fetch")
	decodeAll(frames[2], frames[3]) // evicts 0 and 1
	decodeAll(frames[2], frames[3])
	assert.Equal(t, int32(4), fetches.Load())
	decodeAll(frames[0])
	assert.Equal(t, int32(5), fetches.Load(), "the oldest was evicted")
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*schema.AuditLog)
		errs   []string
	}{
		{"valid", func(*schema.AuditLog) {}, nil},
		{"UInt32 max", func(l *schema.AuditLog) { l.SourceTTL = 1<<32 - 1 }, nil},
		{"negative ttl", func(l *schema.AuditLog) { l.SourceTTL = -1 }, []string{"sourceTTL -1 outside UInt32"}},
		{"asn too large", func(l *schema.AuditLog) { l.SrcASNumber, l.DstASNumber = 1<<32, 1<<40 },
			[]string{"srcASNumber 4294967296", "dstASNumber 1099511627776"}},
		{"zero time", func(l *schema.AuditLog) { l.EventTime = time.Time{} }, []string{"eventTime 0001-01-01T00:00:00Z outside DateTime range"}},
		{"after 2106", func(l *schema.AuditLog) { l.ReceivedAt = time.Date(2106, 3, 1, 0, 0, 0, 0, time.UTC) }, []string{"receivedAt 2106-03-01"}},
		{"epoch is valid", func(l *schema.AuditLog) { l.EventTime = time.Unix(0, 0) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := sample()
			tt.mutate(&l)
			err := l.Validate()
			if tt.errs == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, schema.ErrInvalidRecord)
			for _, e := range tt.errs {
				assert.Contains(t, err.Error(), e)
			}
		})
	}
}
