package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// realisticRow returns a row shaped like the enricher's output for a
// session event of the simulator: a raw log of about 900 bytes, a 7-key
// actor map, 4 tags, 3 resources and 4 enrichments (geoip with 9 data
// keys, asn and isp with 3, connection_type with 1).
func realisticRow(i int) schema.AuditLog {
	s := strconv.Itoa(i)
	now := time.Now().UTC().Truncate(time.Second)
	ip := fmt.Sprintf("203.0.%d.%d", i/256%256, i%256)
	email := "user" + s + "@example.com"
	raw := `{"id":"audit_log-` + s + `","type":"api_key.created","effective_at":` + strconv.FormatInt(now.Unix(), 10) +
		`,"project":{"id":"proj_abc123","name":"Production"},"actor":{"type":"session","session":{"user":{"id":"user-` + s +
		`","email":"` + email + `"},"ip_address":"` + ip + `","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36","ja3":"771,4865-4866-4867","ja4":"t13d1516h2_8daaf6152771","ip_address_details":{"country":"CH","city":"Zurich","region":"ZH","region_code":"ZH","asn":"13030","latitude":"47.37","longitude":"8.54"}}},` +
		`"api_key.created":{"id":"key_` + s + `","data":{"scopes":["api.model.read","api.model.request"]}}}`
	raw += strings.Repeat(" ", max(0, 900-len(raw)))
	return schema.AuditLog{
		WorkspaceID: "00000000-0000-0000-0000-000000000001", SourceID: "org-production", SourceType: "openai", SourceTTL: 365,
		ReceivedAt: now, ID: fmt.Sprintf("%032x", i), EventTime: now.Add(-time.Duration(i) * time.Second),
		EventName: "api_key.created", EventID: "audit_log-" + s, SrcIP: ip, SrcASCountryCode: "CH", SrcASNumber: 13030,
		SrcASOrganization: "Init7 (Switzerland) Ltd.", SrcCity: "Zurich", SrcConnectionType: "Cable/DSL", SrcISP: "Init7",
		SrcLatitude: 47.37, SrcLongitude: 8.54,
		Actor: map[string]string{"type": "session", "user_id": "user-" + s, "user_email": email, "ip": ip,
			"user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "ja3": "771,4865-4866-4867", "ja4": "t13d1516h2_8daaf6152771"},
		Tags:      map[string]string{"category": "api_keys", "action": "created", "env": "prod", "team": "platform"},
		Resources: []string{"key_" + s, "proj_abc123", "user-" + s},
		Enrichments: []schema.Enrichment{
			{Type: "ip", Value: ip, Name: "geoip", Provider: "maxmind", Data: map[string]string{"country": "CH", "city": "Zurich",
				"region": "Zurich", "region_code": "ZH", "postal_code": "8001", "time_zone": "Europe/Zurich", "latitude": "47.37",
				"longitude": "8.54", "database": "GeoIP2-City"}},
			{Type: "ip", Value: ip, Name: "asn", Provider: "maxmind", Data: map[string]string{"asn": "13030", "as_organization": "Init7 (Switzerland) Ltd.", "database": "GeoLite2-ASN"}},
			{Type: "ip", Value: ip, Name: "isp", Provider: "maxmind", Data: map[string]string{"isp": "Init7", "organization": "Init7", "database": "GeoIP2-ISP"}},
			{Type: "ip", Value: ip, Name: "connection_type", Provider: "maxmind", Data: map[string]string{"connection_type": "Cable/DSL"}},
		},
		ServiceName: "openai", RawLog: raw, EventType: "api_key", ActorType: "session", ActorIP: ip,
		ActorUserID: "user-" + s, ActorUserEmail: email, ProjectID: "proj_abc123", ProjectName: "Production",
	}
}

// TestEntrySizeMatchesHeap decodes records the way the pipeline does
// (into one slice of entries per poll) and compares the heap they take,
// from runtime.MemStats, with the estimate the buffer accounts.
func TestEntrySizeMatchesHeap(t *testing.T) {
	reg := kafkatest.NewFakeSchemaRegistry(t)
	serde, _, err := schema.NewSerde(t.Context(), reg.Client(t), contract.SubjectEnriched, true)
	require.NoError(t, err)
	dec, err := schema.NewDecoder(reg.Client(t), 0)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		row  func(i int) schema.AuditLog
	}{
		{"realistic", realisticRow},
		{"sparse", func(i int) schema.AuditLog {
			l := realisticRow(i)
			l.Enrichments, l.Tags, l.Resources, l.RawLog = nil, nil, nil, `{"id":"x"}`
			return l
		}},
		{"large maps", func(i int) schema.AuditLog {
			l := realisticRow(i)
			for k := range 40 {
				l.Tags["tag-"+strconv.Itoa(k)] = "value-of-a-tag-" + strconv.Itoa(i)
			}
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 4000
			recs := make([]*kgo.Record, n)
			for i := range recs {
				v, err := serde.Encode(tc.row(i))
				require.NoError(t, err)
				recs[i] = &kgo.Record{Value: v}
			}
			p := &Pipeline{dec: dec}
			var e0 entry // warm the decoder's schema cache
			require.NoError(t, p.decode(context.Background(), recs[0], &e0))

			before := heapInUse()
			es := make([]entry, n)
			for i, r := range recs {
				require.NoError(t, p.decode(context.Background(), r, &es[i]))
			}
			after := heapInUse()
			runtime.KeepAlive(es)
			runtime.KeepAlive(recs)

			measured := after - before
			estimated := 0
			for i := range es {
				require.Equal(t, stateRow, es[i].state)
				estimated += entryFixed + rowBytes(&es[i].row)
			}
			ratio := float64(estimated) / float64(measured)
			t.Logf("%s: measured %d B per row, estimated %d B per row (ratio %.3f)", tc.name, measured/n, estimated/n, ratio)
			require.InDelta(t, 1.0, ratio, 0.15, "the estimate must stay within 15%% of the heap")
		})
	}
}

func heapInUse() int {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int(ms.HeapAlloc)
}
