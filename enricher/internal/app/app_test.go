package app_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/enricher/internal/app"
	"github.com/auditpipe/auditpipe/enricher/internal/replay"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/service"
	"github.com/auditpipe/auditpipe/pkg/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"))
}

type env struct {
	cluster *kafkatest.Cluster
	reg     *kafkatest.FakeSchemaRegistry
	cfg     app.Config
	metrics *prometheus.Registry // of the last start
	admin   *telemetry.Admin     // of the last start
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := kafkatest.NewCluster(t, kfake.SeedTopics(4, "openai-audit-raw"))
	r := kafkatest.NewFakeSchemaRegistry(t)
	paths, err := mmdbgen.Write(t.TempDir(), mmdbgen.SimulatorNetworks())
	require.NoError(t, err)
	cfg := app.DefaultConfig()
	cfg.Kafka = c.Config()
	cfg.SchemaRegistry.URLs = []string{r.URL()}
	cfg.Topics.Enriched.Partitions = 2
	cfg.TransactionEndTimeout = 5 * time.Second
	cfg.TransactionalID = "enricher-test"
	cfg.MaxPollRecords = 50
	cfg.Geo.City, cfg.Geo.ASN, cfg.Geo.ISP = paths.City, paths.ASN, paths.ISP
	cfg.Geo.ConnectionType, cfg.Geo.Enterprise = paths.ConnectionType, paths.Enterprise
	cfg.Geo.ReloadInterval = 100 * time.Millisecond
	return &env{cluster: c, reg: r, cfg: cfg}
}

// start runs app.Run until the returned stop is called; stop returns Run's
// error.
func (e *env) start(t *testing.T) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	e.metrics = prometheus.NewRegistry()
	e.admin = telemetry.NewAdmin(e.cfg.Admin, e.metrics, nil)
	cfg, reg, admin := e.cfg, e.metrics, e.admin
	go func() {
		done <- app.Run(ctx, cfg, service.Settings{Metrics: reg, Admin: admin, ShutdownTimeout: 5 * time.Second})
	}()
	var once bool
	var err error
	stop = func() error {
		if !once {
			once = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func rawHeaders() []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "workspace_id", Value: []byte("ws_1")},
		{Key: "source_id", Value: []byte("src_1")},
		{Key: "source_type", Value: []byte("openai")},
		{Key: "source_ttl", Value: []byte("30")},
		{Key: "received_at", Value: []byte("2026-11-20T12:00:00.000000001Z")},
		{Key: "poller_version", Value: []byte("test")},
	}
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestEnrichEndToEndExactlyOnceAndReplay(t *testing.T) {
	e := newEnv(t)
	sim, err := openaisim.New(openaisim.Config{Seed: 3, UnknownTypeRate: 0.05}, nil)
	require.NoError(t, err)
	events := sim.Generate(300)
	bad := map[string]string{
		"bad-json": `{"id":`,
		"bad-ip":   `{"id":"audit_log-x","type":"login.succeeded","effective_at":1,"actor":{"type":"session","session":{"ip_address":"1.2.3"}}}`,
		"no-id":    `{"type":"login.succeeded","effective_at":1}`,
	}
	prod := e.cluster.Client(t)
	var recs []*kgo.Record
	for _, ev := range events {
		recs = append(recs, &kgo.Record{Topic: "openai-audit-raw", Key: []byte(ev.ID), Value: ev.Raw, Headers: rawHeaders()})
	}
	for k, v := range bad {
		recs = append(recs, &kgo.Record{Topic: "openai-audit-raw", Key: []byte(k), Value: []byte(v), Headers: rawHeaders()})
	}
	require.NoError(t, prod.ProduceSync(context.Background(), recs...).FirstErr())

	stop := e.start(t)
	enriched := e.cluster.ConsumeAll(t, "openai-audit-enriched", len(events), 30*time.Second)
	dlq := e.cluster.ConsumeAll(t, "openai-audit-dlq", len(bad), 10*time.Second)
	require.Len(t, enriched, len(events))
	require.Len(t, dlq, len(bad))
	assert.Empty(t, e.admin.Ready(context.Background()), "ready while running")

	// The replay command refuses while the enricher is a group member.
	adm := kadm.NewClient(e.cluster.Client(t))
	_, err = replay.Reset(context.Background(), adm, e.cfg.Group, e.cfg.Topics.Raw, time.Unix(0, 0), false)
	require.ErrorIs(t, err, replay.ErrGroupActive)

	require.NoError(t, stop())

	// Every consumed offset is committed: the group is at the end.
	committed, err := adm.FetchOffsets(context.Background(), e.cfg.Group)
	require.NoError(t, err)
	ends, err := adm.ListEndOffsets(context.Background(), "openai-audit-raw")
	require.NoError(t, err)
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup("openai-audit-raw", o.Partition)
		require.True(t, ok)
		assert.Equal(t, o.Offset, c.At, "partition %d", o.Partition)
	})

	// Dead letters: original bytes and headers plus the reason and origin.
	for _, d := range dlq {
		want, ok := bad[string(d.Key)]
		require.True(t, ok, string(d.Key))
		assert.Equal(t, want, string(d.Value))
		assert.Equal(t, "enricher", header(d, "dlq_stage"))
		assert.Equal(t, "openai-audit-raw", header(d, "dlq_topic"))
		assert.NotEmpty(t, header(d, "dlq_error"))
		_, err := strconv.Atoi(header(d, "dlq_offset"))
		require.NoError(t, err)
		_, err = time.Parse(time.RFC3339Nano, header(d, "dlq_time"))
		require.NoError(t, err)
		assert.Equal(t, "src_1", header(d, "source_id"))
		assert.Equal(t, map[string]string{"bad-json": "invalid_json", "bad-ip": "invalid_ip", "no-id": "missing_field"}[string(d.Key)], header(d, "dlq_reason"))
	}

	// An independent decoder (hamba generic decoding into maps) reads the
	// records with nothing but the registry.
	rcl := e.reg.Client(t)
	byID := map[string]openaisim.Event{}
	for _, ev := range events {
		byID[ev.ID] = ev
	}
	ids := map[string]string{}
	for _, r := range enriched {
		id, body, err := (&sr.ConfluentHeader{}).DecodeID(r.Value)
		require.NoError(t, err)
		ws, err := rcl.SchemaByID(context.Background(), id)
		require.NoError(t, err)
		sch, err := avro.ParseWithCache(ws.Schema, "", &avro.SchemaCache{})
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, avro.Unmarshal(sch, body, &m))

		ev, ok := byID[m["eventID"].(string)]
		require.True(t, ok)
		assert.Equal(t, ev.ID, string(r.Key), "key kept")
		assert.Equal(t, string(ev.Raw), m["rawLog"])
		assert.Equal(t, ev.Type, m["eventName"])
		assert.Equal(t, "ws_1", m["workspaceID"])
		assert.Equal(t, int64(30), m["sourceTTL"])
		assert.Equal(t, "openai", m["serviceName"])
		ids[ev.ID] = m["id"].(string)

		// Sessions from the simulator's networks get MaxMind data.
		if ip, _ := m["srcIP"].(string); ip != "" {
			n, ok := openaisim.NetworkFor(netip.MustParseAddr(ip))
			if ok {
				assert.Equal(t, n.City, m["srcCity"], ip)
				assert.Equal(t, n.Country, m["srcASCountryCode"], ip)
				assert.Equal(t, int64(n.ASN), m["srcASNumber"], ip)
				assert.Equal(t, n.UserType, m["srcUserType"], ip)
				enr := m["enrichments"].([]any)
				require.NotEmpty(t, enr)
				assert.Equal(t, "maxmind", enr[0].(map[string]any)["provider"])
			}
		}
		// And our own decoder agrees.
		var l schema.AuditLog
		require.NoError(t, schema.UnmarshalAvro(body, &l))
		assert.Equal(t, m["id"], l.ID)
	}
	require.Len(t, ids, len(events), "each event exactly once")

	// Replay from the beginning with the enricher stopped: the same ids
	// come out again.
	moves, err := replay.Reset(context.Background(), adm, e.cfg.Group, e.cfg.Topics.Raw, time.Unix(0, 0), false)
	require.NoError(t, err)
	require.Len(t, moves, 4)
	for _, mv := range moves {
		assert.Equal(t, int64(0), mv.To)
	}
	stop2 := e.start(t)
	again := e.cluster.ConsumeAll(t, "openai-audit-enriched", 2*len(events), 30*time.Second)
	require.NoError(t, stop2())
	require.Len(t, again, 2*len(events))
	var l schema.AuditLog
	for _, r := range again[len(events):] {
		_, body, err := (&sr.ConfluentHeader{}).DecodeID(r.Value)
		require.NoError(t, err)
		require.NoError(t, schema.UnmarshalAvro(body, &l))
		assert.Equal(t, ids[l.EventID], l.ID, "replay yields the same id")
	}
}

func TestRegistrationOffFailsWhenSchemaMissing(t *testing.T) {
	e := newEnv(t)
	e.cfg.SchemaRegistry.Register = false
	err := app.Run(context.Background(), e.cfg, service.Settings{Metrics: prometheus.NewRegistry()})
	require.ErrorIs(t, err, schema.ErrNotRegistered)
}

// TestRefusesRejectedSchema: against a registry that enforces
// compatibility, the enricher does not start (and register_only fails)
// when the registry refuses its schema (HTTP 409) or holds a newer version
// that cannot read its records; it does not retry, and it says what to do.
func TestRefusesRejectedSchema(t *testing.T) {
	withField := func(field string) sr.Schema {
		s := strings.TrimSpace(schema.RegistrySchema().Schema)
		i := strings.LastIndex(s, "]")
		return sr.Schema{Type: sr.TypeAvro, Schema: s[:i] + "," + field + s[i:]}
	}
	for _, tc := range []struct {
		name         string
		registerOnly bool
		prepare      func(t *testing.T, cl *sr.Client, subject string)
		want         string
		versions     []int // the subject's versions afterwards
	}{
		{"registration refused (409)", false, func(t *testing.T, cl *sr.Client, subject string) {
			_, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Type: sr.TypeAvro,
				Schema: `{"type":"record","name":"AuditLog","namespace":"io.auditpipe.openai","fields":[{"name":"eventTime","type":"string"}]}`})
			require.NoError(t, err)
		}, "the registry refused to register schema v1", []int{1}},
		{"register_only, registration refused (409)", true, func(t *testing.T, cl *sr.Client, subject string) {
			_, err := cl.CreateSchema(context.Background(), subject, sr.Schema{Type: sr.TypeAvro,
				Schema: `{"type":"record","name":"AuditLog","namespace":"io.auditpipe.openai","fields":[{"name":"eventTime","type":"string"}]}`})
			require.NoError(t, err)
		}, "the registry refused to register schema v1", []int{1}},
		{"newer incompatible version", false, func(t *testing.T, cl *sr.Client, subject string) {
			ctx := context.Background()
			_, err := cl.CreateSchema(ctx, subject, schema.RegistrySchema())
			require.NoError(t, err)
			require.NoError(t, cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, subject)[0].Err)
			_, err = cl.CreateSchema(ctx, subject, withField(`{"name":"required","type":"long"}`))
			require.NoError(t, err)
		}, "holds version 2 (schema id 2), newer than this release's schema v1", []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.prepare(t, e.reg.Client(t), e.cfg.SchemaRegistry.Subject)
			cfg := e.cfg
			cfg.RegisterOnly = tc.registerOnly
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err := app.Run(ctx, cfg, service.Settings{Metrics: prometheus.NewRegistry()})
			require.ErrorIs(t, err, schema.ErrSchemaRejected)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, time.Since(start), 10*time.Second, "no retries")
			versions, verr := e.reg.Client(t).SubjectVersions(ctx, cfg.SchemaRegistry.Subject)
			require.NoError(t, verr)
			assert.Equal(t, tc.versions, versions, "nothing registered")
		})
	}
}

// TestRegisterOnly is the deploy-time step: it registers the schema and
// returns without Kafka or GeoIP databases; enrichers that only look the
// schema up then start.
func TestRegisterOnly(t *testing.T) {
	e := newEnv(t)
	cfg := e.cfg
	cfg.RegisterOnly = true
	cfg.SchemaRegistry.Register = false // register_only registers whatever this says
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"}
	cfg.Geo.City = filepath.Join(t.TempDir(), "missing.mmdb")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, app.Run(ctx, cfg, service.Settings{Metrics: prometheus.NewRegistry()}))
	versions, err := e.reg.Client(t).SubjectVersions(ctx, e.cfg.SchemaRegistry.Subject)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, versions)

	e.cfg.SchemaRegistry.Register = false
	sim, err := openaisim.New(openaisim.Config{Seed: 5}, nil)
	require.NoError(t, err)
	ev := sim.Generate(1)[0]
	require.NoError(t, e.cluster.Client(t).ProduceSync(ctx, &kgo.Record{Topic: "openai-audit-raw", Key: []byte(ev.ID), Value: ev.Raw, Headers: rawHeaders()}).FirstErr())
	stop := e.start(t)
	assert.Len(t, e.cluster.ConsumeAll(t, "openai-audit-enriched", 1, 20*time.Second), 1,
		"an enricher that only looks the schema up runs after register_only")
	require.NoError(t, stop())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, app.DefaultConfig().Validate())
	cfg := app.DefaultConfig()
	cfg.Group = ""
	cfg.MaxPollRecords = -1
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "group")
	assert.Contains(t, err.Error(), "max_poll_records")
	bad := app.SchemaRegistryConfig{SchemaRegistry: schema.SchemaRegistry{URLs: []string{"ftp://x"}}}
	require.Error(t, bad.Validate())
}

// counterValue returns the value of a counter without labels.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestTwoReplicasExactlyOnce runs two replicas in one group, the second
// joining while the first is running (a rebalance mid-stream), and checks
// that both do work and every event comes out exactly once.
func TestTwoReplicasExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.cfg.MaxPollRecords = 20
	sim, err := openaisim.New(openaisim.Config{Seed: 8}, nil)
	require.NoError(t, err)
	events := sim.Generate(3000)
	prod := e.cluster.Client(t)
	produce := func(evs []openaisim.Event) {
		var recs []*kgo.Record
		for _, ev := range evs {
			recs = append(recs, &kgo.Record{Topic: "openai-audit-raw", Key: []byte(ev.ID), Value: ev.Raw, Headers: rawHeaders()})
		}
		require.NoError(t, prod.ProduceSync(context.Background(), recs...).FirstErr())
	}
	produce(events[:1000])
	stopA := e.start(t)
	require.Len(t, e.cluster.ConsumeAll(t, "openai-audit-enriched", 1000, 30*time.Second), 1000)

	second := *e
	second.cfg.TransactionalID = "enricher-test-b"
	stopB := second.start(t)
	// Once B has joined, new records spread over both members: trickle
	// records until B has committed some.
	next := 1000
	require.Eventually(t, func() bool {
		produce(events[next : next+1])
		next++
		return counterValue(t, second.metrics, "auditpipe_enricher_events_out_total") > 0
	}, 30*time.Second, 200*time.Millisecond)
	produce(events[next:])

	total := len(events)
	out := e.cluster.ConsumeAll(t, "openai-audit-enriched", total, 60*time.Second)
	require.NoError(t, stopA())
	require.NoError(t, stopB())
	require.Len(t, out, total)
	seen := map[string]bool{}
	for _, r := range out {
		assert.False(t, seen[string(r.Key)], "duplicate %s", r.Key)
		seen[string(r.Key)] = true
	}
	assert.Positive(t, counterValue(t, e.metrics, "auditpipe_enricher_events_out_total"))
	// Nothing more arrives later.
	assert.Len(t, e.cluster.ConsumeAll(t, "openai-audit-enriched", 0, time.Second), total)
}

func TestReplayCommand(t *testing.T) {
	c := kafkatest.NewCluster(t, kfake.SeedTopics(2, "openai-audit-raw"))
	cfgFile := t.TempDir() + "/enricher.yaml"
	require.NoError(t, os.WriteFile(cfgFile, []byte("kafka:\n  brokers: ["+c.Addrs()[0]+"]\n"), 0o600))

	var stdout, stderr bytes.Buffer
	code := app.ReplayMain([]string{"--config", cfgFile, "--since", "2026-11-01T00:00:00Z", "--dry-run"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "openai-audit-raw partition 0: would move -1 -> 0")
	assert.Contains(t, stdout.String(), "openai-audit-raw partition 1: would move -1 -> 0")

	stdout.Reset()
	assert.Equal(t, 2, app.ReplayMain([]string{"--since", "last tuesday"}, &stdout, &stderr))
}

// TestNotReadyWithoutDatabase: a configured database that is missing keeps
// the enricher from consuming and /readyz failing; it stops cleanly.
func TestNotReadyWithoutDatabase(t *testing.T) {
	e := newEnv(t)
	e.cfg.Geo.City = t.TempDir() + "/missing.mmdb"
	stop := e.start(t)
	require.Eventually(t, func() bool {
		failed := e.admin.Ready(context.Background())
		return failed["geo"] != nil && failed["pipeline"] != nil && failed["registry"] == nil
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, stop())
}
