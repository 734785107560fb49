package schema_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

func BenchmarkSerdeEncode(b *testing.B) {
	_, cl := newRegistry(b)
	serde, _, err := schema.NewSerde(context.Background(), cl, contract.SubjectEnriched, true)
	require.NoError(b, err)
	l := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := serde.Encode(l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecoderDecode(b *testing.B) {
	ctx := context.Background()
	_, cl := newRegistry(b)
	serde, _, err := schema.NewSerde(ctx, cl, contract.SubjectEnriched, true)
	require.NoError(b, err)
	dec, err := schema.NewDecoder(cl, 0)
	require.NoError(b, err)
	msg, err := serde.Encode(sample())
	require.NoError(b, err)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var l schema.AuditLog
	for b.Loop() {
		if _, err := dec.Decode(ctx, msg, &l); err != nil {
			b.Fatal(err)
		}
	}
}
