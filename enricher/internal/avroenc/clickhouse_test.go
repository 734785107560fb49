package avroenc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/enricher/internal/avroenc"
	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := chservertest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping chserver:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func chQuery(t *testing.T, base string, params url.Values, body io.Reader) string {
	t.Helper()
	resp, err := http.Post(base+"/?"+params.Encode(), "application/octet-stream", body)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(out))
	return string(out)
}

// TestClickHouseAvroConfluentReadsEncoderOutput feeds encoder output to
// ClickHouse's own AvroConfluent reader, which fetches the writer schema
// from the registry by the id in each record: a decoder that shares
// nothing with our Go types.
func TestClickHouseAvroConfluentReadsEncoderOutput(t *testing.T) {
	base, db := chservertest.NewDatabase(t)
	reg := kafkatest.NewFakeSchemaRegistry(t)
	_, id, err := schema.NewSerde(context.Background(), reg.Client(t), contract.SubjectEnriched, true)
	require.NoError(t, err)
	enc, err := avroenc.New(id)
	require.NoError(t, err)

	var cols []string
	sc := bufio.NewScanner(strings.NewReader(schemas.SeedColumns))
	for sc.Scan() {
		if name, typ, ok := strings.Cut(strings.TrimSpace(sc.Text()), "\t"); ok {
			if typ == "DateTime" {
				// ClickHouse 26.7's AvroConfluent reader stores a
				// timestamp-millis long in a DateTime column modulo 2^32
				// instead of dividing by 1000; DateTime64(3) reads it right.
				typ = "DateTime64(3, 'UTC')"
			}
			cols = append(cols, "`"+name+"` "+typ)
		}
	}
	require.Len(t, cols, 46)
	chQuery(t, base, url.Values{"database": {db}}, strings.NewReader("CREATE TABLE t ("+strings.Join(cols, ", ")+") ENGINE = Memory"))

	sim, err := openaisim.New(openaisim.Config{Seed: 4}, nil)
	require.NoError(t, err)
	meta := normalize.Meta{WorkspaceID: "ws", SourceID: "src", SourceType: "openai", SourceTTL: 9, ReceivedAt: time.Unix(1_790_000_000, 0).UTC()}
	var body bytes.Buffer
	want := map[string]schema.AuditLog{}
	for _, ev := range sim.Generate(50) {
		r, err := normalize.Normalize(ev.Raw, meta)
		require.NoError(t, err)
		r.Log.Enrichments = append(r.Log.Enrichments, schema.Enrichment{Name: "geoip", Provider: "openai", Type: "ip", Value: r.Log.SrcIP,
			Data: map[string]string{"country": r.Details.Country}})
		b, err := enc.Encode(r.Log)
		require.NoError(t, err)
		body.Write(b)
		want[r.Log.EventID] = r.Log
	}
	chQuery(t, base, url.Values{
		"database":                        {db},
		"query":                           {"INSERT INTO t FORMAT AvroConfluent"},
		"format_avro_schema_registry_url": {reg.URL()},
	}, &body)

	out := chQuery(t, base, url.Values{"database": {db}, "default_format": {"JSONEachRow"}},
		strings.NewReader("SELECT eventID, id, eventName, eventType, sourceTTL, toUnixTimestamp(eventTime) AS et, actor, tags, resources, rawLog, enrichments.provider AS providers FROM t"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, len(want))
	for _, line := range lines {
		var row struct {
			EventID   string            `json:"eventID"`
			ID        string            `json:"id"`
			EventName string            `json:"eventName"`
			EventType string            `json:"eventType"`
			SourceTTL json.Number       `json:"sourceTTL"`
			ET        json.Number       `json:"et"`
			Actor     map[string]string `json:"actor"`
			Tags      map[string]string `json:"tags"`
			Resources []string          `json:"resources"`
			RawLog    string            `json:"rawLog"`
			Providers []string          `json:"providers"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &row), line)
		w, ok := want[row.EventID]
		require.True(t, ok, row.EventID)
		assert.Equal(t, w.ID, row.ID)
		assert.Equal(t, w.EventName, row.EventName)
		assert.Equal(t, w.EventType, row.EventType)
		assert.Equal(t, "9", row.SourceTTL.String())
		assert.Equal(t, fmt.Sprint(w.EventTime.Unix()), row.ET.String())
		assert.Equal(t, w.Actor, row.Actor)
		assert.Equal(t, w.Tags, row.Tags)
		assert.Equal(t, w.Resources, row.Resources)
		assert.Equal(t, w.RawLog, row.RawLog)
		assert.Equal(t, []string{"openai"}, row.Providers)
	}
}
