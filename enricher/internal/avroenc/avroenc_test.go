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
	"github.com/auditpipe/auditpipe/pkg/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

func TestCheckAcceptsContractSchema(t *testing.T) {
	sch, err := schema.ParseAvro()
	require.NoError(t, err)
	require.NoError(t, avroenc.Check(sch))
}

func TestCheckRejectsOtherLayouts(t *testing.T) {
	other := avro.MustParse(`{"type":"record","name":"x","fields":[{"name":"workspaceID","type":"long"}]}`)
	require.Error(t, avroenc.Check(other))
}

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
	assert.Equal(t, ref, avroenc.AppendBody(nil, &l))

	// A generic decoder using only the schema text reads it.
	var m map[string]any
	require.NoError(t, avro.Unmarshal(avro.MustParse(schemas.AvroSchema), avroenc.AppendBody(nil, &l), &m))
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
