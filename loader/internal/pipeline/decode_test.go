package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// FuzzDecode feeds arbitrary record values through the loader's decoding
// path: it must never panic, and every value ends up either as a valid row
// or as a dead letter with a reason (the registry is up, so nothing is
// transient).
func FuzzDecode(f *testing.F) {
	reg := kafkatest.NewFakeSchemaRegistry(f)
	serde, _, err := schema.NewSerde(f.Context(), reg.Client(f), contract.SubjectEnriched, true)
	require.NoError(f, err)
	dec, err := schema.NewDecoder(reg.Client(f), 0)
	require.NoError(f, err)
	good, err := serde.Encode(schema.AuditLog{EventID: "e", ReceivedAt: schema.AuditLog{}.ReceivedAt.AddDate(2000, 0, 0), EventTime: schema.AuditLog{}.EventTime.AddDate(2000, 0, 0)})
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 99, 1, 2})
	f.Add(append([]byte{0, 0, 0, 0, 1}, 0xff, 0xff, 0xff, 0xff, 0x0f))
	p := &Pipeline{dec: dec}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e entry
		if err := p.decode(context.Background(), &kgo.Record{Value: b}, &e); err != nil {
			t.Fatalf("transient error with a live registry: %v", err)
		}
		switch e.state {
		case stateRow:
			require.NoError(t, e.row.Validate())
		case stateDead:
			require.Contains(t, []string{ReasonAvroDecode, ReasonInvalidRecord}, e.reason)
			require.NotEmpty(t, e.err)
		default:
			t.Fatalf("state %d", e.state)
		}
	})
}

// failingDecoder fails like an unreachable registry.
type failingDecoder struct{}

func (failingDecoder) Decode(context.Context, []byte, *schema.AuditLog) (int, error) {
	return 0, errors.New("dial tcp: connection refused")
}

func TestDecodeTransientIsPending(t *testing.T) {
	p := &Pipeline{dec: failingDecoder{}}
	var e entry
	require.Error(t, p.decode(t.Context(), &kgo.Record{Value: []byte{0, 0, 0, 0, 1}}, &e))
	require.Equal(t, statePending, e.state)
}

func TestIntentMetadata(t *testing.T) {
	for _, last := range []int64{0, 1, 1 << 40} {
		got, ok := parseIntent(intentMetadata(last))
		require.True(t, ok)
		require.Equal(t, last, got)
	}
	for _, bad := range []string{"", "member-1", intentPrefix, intentPrefix + "-1", intentPrefix + "x"} {
		_, ok := parseIntent(bad)
		require.False(t, ok, bad)
	}
}

func FuzzParseIntent(f *testing.F) {
	f.Add(intentMetadata(42))
	f.Add("auditpipe-loader/intent/v1:")
	f.Fuzz(func(t *testing.T, s string) {
		if last, ok := parseIntent(s); ok {
			require.GreaterOrEqual(t, last, int64(0))
			again, ok := parseIntent(intentMetadata(last))
			require.True(t, ok)
			require.Equal(t, last, again)
		}
	})
}
