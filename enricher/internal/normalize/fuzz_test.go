package normalize_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
)

func FuzzNormalize(f *testing.F) {
	for _, c := range handWritten {
		f.Add([]byte(c.input))
	}
	f.Add([]byte(`{"id":"a","type":"x.y","effective_at":1e3,"x.y":{"a_ids":"1,2","b":[{"id":"c"}]}}`))
	f.Add([]byte(`{"id":"a","type":"x","effective_at":1,"actor":{"session":{"ip_address_details":{"asn":"AS1","latitude":"nan"}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := normalize.Normalize(raw, testMeta)
		reason := normalize.ReasonOf(err)
		// The scanner agrees with encoding/json on what is JSON.
		if utf8.Valid(raw) && len(raw) <= normalize.MaxEventBytes {
			valid := json.Valid(raw)
			if !valid && err == nil {
				t.Fatalf("accepted invalid JSON %q", raw)
			}
			isObject := strings.HasPrefix(strings.TrimLeft(string(raw), " \t\r\n"), "{")
			if valid && isObject && reason == normalize.ReasonInvalidJSON && !strings.Contains(err.Error(), "nesting too deep") {
				t.Fatalf("rejected valid JSON %q: %v", raw, err)
			}
		}
		if err != nil {
			if reason == "" {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !utf8.ValidString(r.Log.RawLog) || r.Log.EventID == "" || r.Log.EventName == "" {
			t.Fatalf("accepted an invalid event: %+v", r.Log)
		}
		if err := r.Log.Validate(); err != nil {
			t.Fatalf("accepted record fails schema validation: %v", err)
		}
	})
}

func FuzzParseMeta(f *testing.F) {
	f.Add("30", "2026-11-20T12:00:00.5Z", `{"a":"b"}`)
	f.Add("", "", "")
	f.Add("-1", "yesterday", `{"a":1}`)
	f.Fuzz(func(t *testing.T, ttl, received, tags string) {
		h := map[string]string{"source_ttl": ttl, "received_at": received, "tags": tags}
		get := func(k string) (string, bool) { v, ok := h[k]; return v, ok }
		m, err := normalize.ParseMeta(get, time.Unix(0, 0), map[string]string{"s": "t"})
		if err != nil {
			if normalize.ReasonOf(err) != normalize.ReasonInvalidHeader {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if m.SourceTTL < 0 || m.SourceTTL > 1<<32-1 {
			t.Fatalf("source ttl %d out of range", m.SourceTTL)
		}
	})
}
