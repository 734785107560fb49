package avroenc_test

import (
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/enricher/internal/avroenc"
	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

// TestEncodeMatchesHamba encodes normalized events of every kind and
// checks that hamba/avro decodes them to the same record, and that the
// bytes equal hamba's own encoding when no map has two entries.
func TestEncodeMatchesHamba(t *testing.T) {
	enc, err := avroenc.New(7)
	require.NoError(t, err)
	sim, err := openaisim.New(openaisim.Config{Seed: 21, UnknownTypeRate: 0.1}, nil)
	require.NoError(t, err)
	meta := normalize.Meta{WorkspaceID: "ws", SourceID: "src", SourceType: "openai", SourceTTL: 7,
		ReceivedAt: time.Date(2026, 11, 20, 1, 2, 3, 456789000, time.UTC), Tags: map[string]string{"env": "x"}}
	evs := sim.Generate(300)
	for _, et := range openaisim.EventTypes() {
		evs = append(evs, sim.GenerateSpec(openaisim.Spec{N: 1, Type: et.Name})...)
	}
	for _, ev := range evs {
		r, err := normalize.Normalize(ev.Raw, meta)
		require.NoError(t, err)
		l := r.Log
		l.SrcLatitude, l.SrcASNumber, l.SrcUserType = -33.5, 4294967295, "business"
		l.Enrichments = append(l.Enrichments, schema.Enrichment{Name: "geoip", Provider: "maxmind", Type: "ip", Value: "1.2.3.4",
			Data: map[string]string{"city": "Sydney", "country": "AU"}})

		wire, err := enc.Encode(l)
		require.NoError(t, err)
		id, body, err := (&sr.ConfluentHeader{}).DecodeID(wire)
		require.NoError(t, err)
		assert.Equal(t, 7, id)

		var got schema.AuditLog
		require.NoError(t, schema.UnmarshalAvro(body, &got))
		want := l
		want.ReceivedAt = want.ReceivedAt.Truncate(time.Millisecond)
		assert.True(t, got.ReceivedAt.Equal(want.ReceivedAt))
		assert.True(t, got.EventTime.Equal(want.EventTime))
		got.ReceivedAt, got.EventTime, want.ReceivedAt, want.EventTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		assert.Equal(t, want, got, ev.Type)
	}

	// Byte equality with hamba on single-entry maps.
	l := schema.AuditLog{ID: "x", ReceivedAt: time.Unix(1, 0), EventTime: time.Unix(2, 0), Actor: map[string]string{"type": "session"},
		Tags: map[string]string{}, Resources: []string{"a", "b"}, ReadOnly: true, SrcLongitude: 1.5, SourceTTL: 30,
		Enrichments: []schema.Enrichment{{Data: map[string]string{"k": "v"}, Name: "n", Provider: "p", Type: "t", Value: "v"}}}
	ref, err := schema.MarshalAvro(&l)
	require.NoError(t, err)
	wire, err := enc.EncodeLog(&l)
	require.NoError(t, err)
	assert.Equal(t, ref, wire[5:])

	// A generic decoder using only the schema text reads it.
	var m map[string]any
	require.NoError(t, avro.Unmarshal(avro.MustParse(schemas.AvroSchema), wire[5:], &m))
	assert.Equal(t, []any{"a", "b"}, m["resources"])
}

func TestEncodeValidates(t *testing.T) {
	enc, err := avroenc.New(1)
	require.NoError(t, err)
	_, err = enc.Encode(schema.AuditLog{SourceTTL: -1, ReceivedAt: time.Unix(1, 0), EventTime: time.Unix(1, 0)})
	require.ErrorIs(t, err, schema.ErrInvalidRecord)
	_, err = enc.Encode("nope")
	require.Error(t, err)
}

// TestEncodeBufferRecycles checks the pooled path: EncodeBuffer writes the
// same bytes as EncodeLog, a released buffer is reused, and EncodeLog's
// results stay intact while buffers are reused under them.
func TestEncodeBufferRecycles(t *testing.T) {
	enc, err := avroenc.New(3)
	require.NoError(t, err)
	sim, err := openaisim.New(openaisim.Config{Seed: 5}, nil)
	require.NoError(t, err)
	meta := normalize.Meta{WorkspaceID: "ws", SourceID: "src", SourceType: "openai",
		ReceivedAt: time.Date(2026, 11, 20, 1, 2, 3, 0, time.UTC)}
	var kept [][]byte // EncodeLog results, owned by the test
	var want []string
	reused := false
	for _, ev := range sim.Generate(200) {
		r, err := normalize.Normalize(ev.Raw, meta)
		require.NoError(t, err)
		owned, err := enc.EncodeLog(&r.Log)
		require.NoError(t, err)
		buf, err := enc.EncodeBuffer(&r.Log)
		require.NoError(t, err)
		requireSameRecord(t, owned, buf) // maps are written in Go's map order
		kept, want = append(kept, owned), append(want, string(owned))

		enc.Release(buf)
		again, err := enc.EncodeBuffer(&r.Log)
		require.NoError(t, err)
		reused = reused || &again[:1][0] == &buf[:1][0]
		requireSameRecord(t, owned, again)
		enc.Release(again)
	}
	assert.True(t, reused, "a released buffer comes back from the pool")
	for i := range kept {
		require.Equal(t, want[i], string(kept[i]), "record %d was not overwritten by later encodes", i)
	}
	enc.Release(nil) // no-op
}

// requireSameRecord decodes two wire-format records and compares them.
func requireSameRecord(t *testing.T, a, b []byte) {
	t.Helper()
	require.Equal(t, a[:5], b[:5], "same header")
	var la, lb schema.AuditLog
	require.NoError(t, schema.UnmarshalAvro(a[5:], &la))
	require.NoError(t, schema.UnmarshalAvro(b[5:], &lb))
	require.Equal(t, la, lb)
}
