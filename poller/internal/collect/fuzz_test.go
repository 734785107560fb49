package collect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/poller/internal/health"
	"github.com/auditpipe/auditpipe/poller/internal/state"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// hostilePages is an audit log API driven by fuzz input: each request
// reads a few bytes that choose has_more, the items (ids and cursors from
// a small alphabet, so that they repeat and cycle; effective_at 0, below
// zero, in the window or in the far future; some items too large for a
// record; some with wrong types) and the cursor, whatever was asked.
type hostilePages struct {
	mu     sync.Mutex
	data   []byte
	pos    int
	served map[string]bool // ids sent in a decodable page
	oversz map[string]bool // ids sent too large for a record
	calls  int
}

func (h *hostilePages) next() byte {
	if len(h.data) == 0 {
		return 0
	}
	b := h.data[h.pos%len(h.data)]
	h.pos++
	return b
}

func (h *hostilePages) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	ctl := h.next()
	if ctl%17 == 16 {
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"error":{"message":"Zq-upstream-text ` + fuzzKey + `"}}`))
		return
	}
	n := int(ctl % 8)
	var items []string
	ids := map[string]bool{}
	var big []string
	wrong := false
	for range n {
		b := h.next()
		id := fmt.Sprintf("Zq-id-%d", b%23)
		eff := []int64{0, -7, fuzzNow - 600, fuzzNow - 5400, fuzzNow - 1, 99_999_999_999}[int(b>>5)%6]
		switch {
		case b%29 == 0:
			items = append(items, fmt.Sprintf(`{"id":%d,"effective_at":%d}`, b, eff)) // a number for an id
			wrong = true
		case b%31 == 1:
			items = append(items, fmt.Sprintf(`{"id":%q,"effective_at":"%d"}`, id, eff)) // a string for a time
			wrong = true
		case b%7 == 3:
			items = append(items, fmt.Sprintf(`{"id":%q,"type":"x.y","effective_at":%d,"pad":%q}`, id, eff, strings.Repeat("p", 3000)))
			big = append(big, id)
			ids[id] = true
		default:
			items = append(items, fmt.Sprintf(`{"id":%q,"type":"x.y","effective_at":%d}`, id, eff))
			ids[id] = true
		}
	}
	cursor := fmt.Sprintf(`"Zq-cur-%d"`, h.next()%5)
	if n == 0 {
		cursor = "null"
	}
	body := fmt.Sprintf(`{"object":"list","data":[%s],"first_id":%s,"last_id":%s,"has_more":%t}`,
		strings.Join(items, ","), cursor, cursor, h.next()%4 != 0)
	if !wrong {
		for id := range ids {
			h.served[id] = true
		}
		for _, id := range big {
			h.oversz[id] = true
		}
	}
	_, _ = w.Write([]byte(body))
}

const (
	fuzzNow = 1_790_000_000
	fuzzKey = "sk-admin-FUZZKEY"
)

// FuzzHostileUpstream runs the real client and a collector against
// hostilePages for two cycles. Whatever the pages, the collector stops on
// its own within a bounded number of requests, publishes only ids it was
// served and each at most once, never a raw record over the limit, never
// more than max_slice_events events per transaction, dead-letters only
// oversized events, and keeps upstream text out of what it would serve.
func FuzzHostileUpstream(f *testing.F) {
	f.Add([]byte{0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x02, 0x01})
	f.Add([]byte{0x01, 0x00, 0x03, 0x01})             // one item, the same cursor, has_more forever
	f.Add([]byte{0x02, 0x10, 0x11, 0x00, 0x01, 0x05}) // cycling cursors
	f.Add([]byte{0x05, 0x03, 0x0a, 0x11, 0x18, 0x1f, 0x02, 0x01})
	f.Add([]byte{0x10, 0x00, 0x1d, 0x01, 0x01}) // a server error, a wrong type
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 256 {
			return
		}
		api := &hostilePages{data: data, served: map[string]bool{}, oversz: map[string]bool{}}
		srv := httptest.NewServer(api)
		defer srv.Close()
		client, err := upstream.New(upstream.Config{BaseURL: srv.URL + "/v1", Key: config.NewSecret(fuzzKey), MaxAttempts: 2,
			Backoff: retry.Policy{Initial: time.Microsecond, Max: time.Microsecond}}, nil)
		require.NoError(t, err)
		codec, err := state.NewCodec()
		require.NoError(t, err)
		defer codec.Close()
		src := testSource()
		src.Backfill, src.Slice, src.MaxSliceEvents, src.PageSize, src.MaxRecordBytes = 2*time.Hour, time.Hour, 20, 7, 2500
		com := &fakeCommitter{}
		now := time.Unix(fuzzNow, 0)
		hs := health.NewSource(health.Rule{StallAfter: time.Hour, FailingAfter: 3})
		hs.Start(now)
		col := New(src, state.New(src.ID), Options{API: client, Committer: com, Codec: codec, Health: hs,
			Topics: Topics{Raw: "raw", State: "state", DLQ: "dlq"}, Metrics: NewMetrics(prometheus.NewRegistry()),
			Now: func() time.Time { return now }})
		for range 2 {
			_, err := col.Cycle(context.Background())
			require.False(t, errors.Is(err, ErrKafka), "an upstream never fails Kafka: %v", err)
			now = now.Add(10 * time.Second)
		}
		// Bounded: a slice of 2 attempts x the page bound, 13 halvings of
		// each of the 3 slices of 2 cycles (and the rescan none is due for).
		require.Less(t, api.calls, 2*3*13*2*(2*3+2)+10, "requests")

		seen := map[string]bool{}
		for _, txn := range com.txns {
			raw := 0
			for _, r := range txn {
				switch r.Topic {
				case "raw":
					raw++
					id := string(r.Key)
					require.True(t, api.served[id], "published %s, never served in a usable page", id)
					require.False(t, seen[id], "published %s twice", id)
					seen[id] = true
					require.LessOrEqual(t, len(r.Value), src.MaxRecordBytes, "a raw record over the limit")
				case "dlq":
					raw++
					id := string(r.Key)
					require.True(t, api.oversz[id], "dead-lettered %s, which fits", id)
					require.False(t, seen[id], "%s handled twice", id)
					seen[id] = true
					require.LessOrEqual(t, len(r.Value), dlqBodyBytes)
				}
			}
			require.LessOrEqual(t, raw, src.MaxSliceEvents, "a transaction over max_slice_events")
		}
		v := hs.Verdict(now)
		require.NotContains(t, v.String(), "Zq", "upstream text in what readiness serves")
		require.NotContains(t, v.String(), fuzzKey)
	})
}
