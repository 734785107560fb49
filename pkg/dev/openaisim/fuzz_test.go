package openaisim

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzParseListParams(f *testing.F) {
	for _, seed := range []string{
		"",
		"limit=5",
		"limit=0",
		"limit=abc",
		"effective_at%5Bgte%5D=1720000000&effective_at%5Blt%5D=1730000000",
		"event_types[]=login.succeeded&event_types[]=api_key.created",
		"tenant_only=true&event_types[]=tenant.user.added",
		"tenant_only=true&event_types[]=login.succeeded",
		"after=" + encodeCursor(position{EffectiveAt: 1720000000, Seq: 7}),
		"before=cur_AAAA",
		"effective_at[gt]=9223372036854775807",
		"effective_at[lt]=-9223372036854775808",
		"%zz",
		"project_ids[0]=proj_a&actor_emails=a@b.c",
	} {
		f.Add(seed)
	}
	s := newStore()
	for i := range 50 {
		ev := &Event{ID: "audit_log-" + string(rune('A'+i%26)) + string(rune('a'+i/26)), Type: "login.succeeded", EffectiveAt: int64(1720000000 + i/3)}
		require.NoError(f, s.insert(ev))
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, apiErr := parseListParams(q)
		if apiErr != nil {
			require.Equal(t, 400, apiErr.status)
			require.NotEmpty(t, apiErr.message)
			return
		}
		require.GreaterOrEqual(t, p.limit, 1)
		require.LessOrEqual(t, p.limit, maxLimit)
		evs, _ := s.page(&p.filter, p.limit, p.after, p.before)
		require.LessOrEqual(t, len(evs), p.limit)
		for i := 1; i < len(evs); i++ {
			require.True(t, positionOf(evs[i-1]).newerThan(positionOf(evs[i])))
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(position{EffectiveAt: 1720000000, Seq: 1}))
	f.Add(encodeCursor(position{EffectiveAt: -5, Seq: 1 << 60}))
	f.Add("cur_")
	f.Add("cur_djEuMS4yLjM")
	f.Add("audit_log-abc")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeCursor(s)
		if err != nil {
			return
		}
		require.Equal(t, s, encodeCursor(p), "only canonical cursors decode")
	})
}

func FuzzCursorRoundTrip(f *testing.F) {
	f.Add(int64(1720000000), uint64(3))
	f.Add(int64(-1), uint64(0))
	f.Fuzz(func(t *testing.T, eff int64, seq uint64) {
		p := position{EffectiveAt: eff, Seq: seq}
		got, err := decodeCursor(encodeCursor(p))
		require.NoError(t, err)
		require.Equal(t, p, got)
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"id":"audit_log-x","type":"login.succeeded","effective_at":1,"actor":{"type":"session","session":{"user":{"id":"u","email":"e"}}}}`))
	f.Add([]byte(`{"id":"a","type":"t","effective_at":1,"actor":"weird","project":[1],"t":{"id":5}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := parseEvent(raw)
		if err != nil {
			return
		}
		require.NotEmpty(t, ev.ID)
		require.NotEmpty(t, ev.Type)
		require.Equal(t, string(raw), string(ev.Raw))
	})
}
