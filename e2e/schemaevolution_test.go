package e2e_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/e2e/devstack"
	"github.com/auditpipe/auditpipe/e2e/kafkabroker"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

const (
	enrichedTopic   = "openai-audit-enriched"
	enrichedSubject = "openai-audit-enriched-value"
	// v1File is the schema a third-party consumer pinned to v1 reads with.
	v1File = "../schemas/avro/openai_audit_logs.v1.avsc"
	// newType is an event type OpenAI might add: its family maps to no
	// category, so only the generic normalization applies.
	newType = "sandbox.environment.provisioned"
)

// TestRollingSchemaUpgrade upgrades a running pipeline from schema v1 to
// v2 (one new column, actorUserAgent; e2e/testdata/schema_v2.patch) the
// way docs/schema.md says, with real binaries of both versions, the real
// migration on the embedded ClickHouse and a registry that enforces
// compatibility: the migration runs under the v1 loader; a v1 loader
// restarts against the migrated table; v1 records waiting in the topic are
// loaded by the v2 loader; the v2 schema is registered by the deploy step
// while the v1 enricher writes; the v2 enricher fills the new field; a v1
// loader put back then waits instead of dropping the new field. A
// third-party consumer pinned to v1 (hamba/avro with the v1 file as reader
// schema) and ClickHouse's Kafka engine with the v1 columns decode every
// record throughout. A new event type and a new field inside a known type
// reach ClickHouse, and the new type shows in the enricher's metric.
// Nothing is lost or duplicated. Last, a v2 enricher refuses to start
// against a registry holding a newer version that cannot read its records.
func TestRollingSchemaUpgrade(t *testing.T) { rollingSchemaUpgrade(t, nil) }

// TestRollingSchemaUpgradeOnApacheKafka is the same upgrade on a real
// Apache Kafka 4.x broker (single-node KRaft).
func TestRollingSchemaUpgradeOnApacheKafka(t *testing.T) {
	broker := kafkabroker.StartTest(t)
	rollingSchemaUpgrade(t, []string{broker.Addr()})
}

// rollingSchemaUpgrade runs the upgrade on kfake (externalKafka nil) or on
// the brokers given.
func rollingSchemaUpgrade(t *testing.T, externalKafka []string) {
	v2 := buildSchemaV2(t) // in the background, while v1 runs
	p := startPipeline(t, pipelineOptions{
		sim: openaisim.Config{Seed: 15},
		seed: func(sim *openaisim.Simulator) {
			sim.GenerateSpec(openaisim.Spec{N: 150, EffectiveAt: time.Now().Add(-time.Hour)})
		},
		externalKafka: externalKafka,
		extraEnv:      map[string][]string{"poller": sourceEnv()},
	})
	p.waitCount("SELECT count() FROM openai_audit_logs", len(p.sim.GroundTruth()), 2*time.Minute)
	pinned := startPinnedReader(t, p)
	checkKafkaEngine := startThirdPartyReader(t, p) // its table has the v1 columns
	bin := v2.wait(t)

	t.Run("migration under the running v1 loader", func(t *testing.T) { migrateUnderV1(t, p, bin) })
	var pending []openaisim.Event
	t.Run("v2 loader loads the v1 records waiting in the topic", func(t *testing.T) { pending = upgradeLoader(t, p, pinned, bin) })
	t.Run("v2 schema registered while the v1 enricher writes", func(t *testing.T) { registerV2(t, p, bin) })
	var novel []openaisim.Event
	t.Run("v2 enricher", func(t *testing.T) {
		require.NoError(t, p.stack.Procs["enricher"].Stop(30*time.Second))
		replaceService(t, p, "enricher", filepath.Join(bin, "enricher"))
		novel = addNovelEvents(t, p.sim)
		waitEvents(t, p, append(novel, p.sim.Generate(30)...))
	})
	t.Run("a v1 loader waits for v2 records instead of dropping the new field", func(t *testing.T) { rollBackLoader(t, p, pinned, bin) })

	t.Run("nothing lost or duplicated", func(t *testing.T) { assertExactlyOnce(t, p) })
	t.Run("each row as its writer's version says", func(t *testing.T) { checkVersions(t, p, pinned, pending) })
	t.Run("new event type and new field", func(t *testing.T) { checkNovel(t, p, novel) })
	t.Run("third-party consumers pinned to v1", func(t *testing.T) {
		pinned.check(t, p)
		checkKafkaEngine()
	})
	t.Run("a v2 enricher refuses a registry with an incompatible v3", func(t *testing.T) { refuseIncompatibleV3(t, p, bin) })
}

// v2MigrationVersions lists, one per line, the versions the v2 loader has
// applied: this build's migrations and the patch's one (the next number).
func v2MigrationVersions(t *testing.T) string {
	t.Helper()
	ms, err := schema.Migrations(schema.MigrationOptions{Database: "db"})
	require.NoError(t, err)
	var vs []string
	for _, m := range ms {
		vs = append(vs, strconv.Itoa(m.Version))
	}
	return strings.Join(append(vs, strconv.Itoa(ms[len(ms)-1].Version+1)), "\n")
}

// migrateUnderV1 applies the v2 migration with the v2 loader's deploy
// step (migrate_only) while the v1 loader runs, then restarts a v1 loader
// against the migrated table.
func migrateUnderV1(t *testing.T, p *pipeline, bin string) {
	loader := p.stack.Procs["loader"]
	pid := loader.Pid()
	before := p.sim.Generate(20)
	out, err := runOnce(p, "loader", filepath.Join(bin, "loader"), "AUDITPIPE_LOADER_MIGRATE_ONLY=true")
	require.NoError(t, err, out)
	assert.Equal(t, "actorUserAgent\tString\t''", p.mustQuery("SELECT name, type, default_expression FROM system.columns WHERE database = currentDatabase() AND table = 'openai_audit_logs' AND name = 'actorUserAgent' FORMAT TSVRaw"))
	assert.Equal(t, v2MigrationVersions(t), p.mustQuery("SELECT version FROM auditpipe_schema_migrations FINAL ORDER BY version FORMAT TSV"))
	waitEvents(t, p, append(before, p.sim.Generate(20)...))
	assert.Equal(t, pid, loader.Pid(), "the v1 loader kept loading through the migration")

	loader.Kill()
	require.NoError(t, loader.Restart())
	waitEvents(t, p, p.sim.Generate(10))
	assert.Contains(t, p.out.tail(20000), "the table has a column this release does not write", "the restarted v1 loader names the new column")
}

// upgradeLoader stops the v1 loader, lets the v1 enricher write records
// nobody loads yet, then starts the v2 loader, which must load them. It
// returns those events.
func upgradeLoader(t *testing.T, p *pipeline, pinned *pinnedReader, bin string) []openaisim.Event {
	require.NoError(t, p.stack.Procs["loader"].Stop(30*time.Second))
	pending := p.sim.Generate(30)
	pinned.waitFor(t, pending) // in the topic, written with v1
	replaceService(t, p, "loader", filepath.Join(bin, "loader"))
	waitEvents(t, p, pending)
	return pending
}

// rollBackLoader puts a v1 loader back while the v2 enricher writes: it
// must not load the v2 records (it would drop actorUserAgent) but wait,
// saying why, until a v2 loader takes them over.
func rollBackLoader(t *testing.T, p *pipeline, pinned *pinnedReader, bin string) {
	p.stack.Procs["loader"].Kill()
	replaceService(t, p, "loader", filepath.Join(binDir, "loader"))
	evs := p.sim.Generate(10)
	pinned.waitFor(t, evs)
	require.Eventually(t, func() bool {
		return strings.Contains(p.out.tail(2000), "has fields this release (schema v1) does not know: actorUserAgent")
	}, time.Minute, 100*time.Millisecond, "the v1 loader says why it waits")
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = "'" + e.ID + "'"
	}
	assert.Equal(t, "0", p.mustQuery("SELECT count() FROM openai_audit_logs WHERE eventID IN ("+strings.Join(ids, ",")+")"), "the v1 loader loaded none of the v2 records")
	p.stack.Procs["loader"].Kill() // a graceful stop would wait drain_timeout for them
	replaceService(t, p, "loader", filepath.Join(bin, "loader"))
	waitEvents(t, p, evs)
}

// registerV2 runs the v2 enricher's deploy step (register_only) while the
// v1 enricher runs, checks that an older enricher may still start (v2
// reads v1 records: a rollback is allowed), and that v1 records keep
// loading.
func registerV2(t *testing.T, p *pipeline, bin string) {
	out, err := runOnce(p, "enricher", filepath.Join(bin, "enricher"), "AUDITPIPE_ENRICHER_REGISTER_ONLY=true")
	require.NoError(t, err, out)
	versions, err := registryClient(t, p).SubjectVersions(context.Background(), enrichedSubject)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, versions)
	out, err = runOnce(p, "enricher", filepath.Join(binDir, "enricher"), "AUDITPIPE_ENRICHER_REGISTER_ONLY=true")
	require.NoError(t, err, "the v1 enricher may start after v2 was registered (rollback): %s", out)
	waitEvents(t, p, p.sim.Generate(20))
}

// addNovelEvents adds an event of a type nobody knows yet and a known type
// carrying a field it never had, both from a session with a user agent.
func addNovelEvents(t *testing.T, sim *openaisim.Simulator) []openaisim.Event {
	now := time.Now().Unix()
	actor := `"actor":{"type":"session","session":{"user":{"id":"user-novel","email":"novel@example.com"},"ip_address":"203.0.113.7","user_agent":"NovelAgent/2.0"}}`
	evs, err := sim.AddRaw(
		[]byte(fmt.Sprintf(`{"id":"audit_log-novelType0000000001","type":%q,"effective_at":%d,"project":{"id":"proj_novel","name":"Novel"},%s,%q:{"id":"sbx_123","owner_ids":["user-owner1"],"region":"eu"}}`, newType, now, actor, newType)),
		[]byte(fmt.Sprintf(`{"id":"audit_log-novelField000000001","type":"api_key.created","effective_at":%d,%s,"api_key.created":{"id":"key_novel","data":{"scopes":["api.model.read"]},"rotation_policy_id":"rotpol_42","expires_at":1900000000}}`, now, actor)),
	)
	require.NoError(t, err)
	return evs
}

// checkVersions checks each row against its enriched record's writer
// schema: rows written with v1 have the new column's default, rows written
// with v2 the session's user agent; the pending v1 records were loaded.
func checkVersions(t *testing.T, p *pipeline, pinned *pinnedReader, pending []openaisim.Event) {
	ids := pinned.writerIDs()
	require.Len(t, ids, 2, "two writer schemas in the topic: %v", ids)
	v1, v2 := ids[0], ids[1]
	ua := map[string]string{}
	for _, e := range p.sim.GroundTruth() {
		var ev struct {
			Actor *struct {
				Session *struct {
					UserAgent string `json:"user_agent"`
				} `json:"session"`
			} `json:"actor"`
		}
		require.NoError(t, json.Unmarshal(e.Raw, &ev))
		if ev.Actor != nil && ev.Actor.Session != nil {
			ua[e.ID] = ev.Actor.Session.UserAgent
		}
	}
	byWriter := map[int]int{}
	filled := 0
	for _, r := range p.rows("SELECT eventID, actorUserAgent FROM openai_audit_logs FINAL") {
		id, got := r["eventID"].(string), r["actorUserAgent"].(string)
		w := pinned.writer(id)
		byWriter[w]++
		switch w {
		case v1:
			assert.Empty(t, got, "event %s written with v1 holds the default", id)
		case v2:
			assert.Equal(t, ua[id], got, "event %s written with v2", id)
			if got != "" {
				filled++
			}
		default:
			t.Errorf("event %s: writer schema %d", id, w)
		}
	}
	for _, e := range pending {
		assert.Equal(t, v1, pinned.writer(e.ID), "pending event %s was written with v1", e.ID)
	}
	assert.Positive(t, filled, "v2 rows carry user agents")
	t.Logf("rows by writer schema id: %v; %d v2 rows with a user agent", byWriter, filled)
}

// checkNovel checks the new event type and the new field made it through
// the generic normalization, and the new type is in the enricher's metric.
func checkNovel(t *testing.T, p *pipeline, novel []openaisim.Event) {
	rows := p.rows(fmt.Sprintf("SELECT eventID, eventName, eventType, tags, resources, rawLog, actorUserAgent FROM openai_audit_logs FINAL WHERE eventID IN ('%s', '%s') ORDER BY eventID", novel[0].ID, novel[1].ID))
	require.Len(t, rows, 2)
	byID := map[string]map[string]any{rows[0]["eventID"].(string): rows[0], rows[1]["eventID"].(string): rows[1]}
	nt, nf := byID[novel[0].ID], byID[novel[1].ID]
	assert.Equal(t, newType, nt["eventName"])
	assert.Equal(t, "sandbox.environment", nt["eventType"])
	assert.Equal(t, "other", nt["tags"].(map[string]any)["category"])
	assert.Equal(t, string(novel[0].Raw), nt["rawLog"])
	assert.Subset(t, nt["resources"], []any{"sbx_123", "proj_novel", "user-owner1"})
	assert.Equal(t, "NovelAgent/2.0", nt["actorUserAgent"])

	assert.Equal(t, "api_keys", nf["tags"].(map[string]any)["category"])
	assert.Equal(t, string(novel[1].Raw), nf["rawLog"], "the new field is kept in rawLog")
	assert.Subset(t, nf["resources"], []any{"key_novel", "rotpol_42"}, "the new *_id field is a resource")

	resp, err := http.Get("http://" + p.stack.AdminAddr("enricher") + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`(?m)^auditpipe_enricher_unmapped_events_total\{event_type="`+regexp.QuoteMeta(newType)+`"\} 1$`), string(body))
}

// refuseIncompatibleV3 registers (under NONE, as only a breaking release
// could) a v3 that cannot read v2 records; the v2 enricher's deploy step
// must then fail and say what to do.
func refuseIncompatibleV3(t *testing.T, p *pipeline, bin string) {
	ctx := context.Background()
	cl := registryClient(t, p)
	latest, err := cl.SchemaByVersion(ctx, enrichedSubject, -1)
	require.NoError(t, err)
	require.NoError(t, cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, enrichedSubject)[0].Err)
	s := latest.Schema.Schema
	i := strings.LastIndex(s, "]")
	_, err = cl.CreateSchema(ctx, enrichedSubject, sr.Schema{Type: sr.TypeAvro, Schema: s[:i] + `,{"name":"tenantRegion","type":"string"}` + s[i:]})
	require.NoError(t, err)
	out, err := runOnce(p, "enricher", filepath.Join(bin, "enricher"), "AUDITPIPE_ENRICHER_REGISTER_ONLY=true")
	require.Error(t, err, "the v2 enricher must refuse to start")
	assert.Contains(t, out, "holds version 3")
	assert.Contains(t, out, "cannot read records written with v2: reader field tenantRegion is missing in writer schema and has no default")
	assert.Contains(t, out, "deploy the release that registered version 3")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=ERROR") {
			t.Logf("the v2 enricher refused to start: %s", line)
		}
	}
}

// waitEvents waits until every one of evs is a row.
func waitEvents(t *testing.T, p *pipeline, evs []openaisim.Event) {
	t.Helper()
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = "'" + e.ID + "'"
	}
	p.waitCount(fmt.Sprintf("SELECT uniqExact(eventID) FROM openai_audit_logs WHERE eventID IN (%s)", strings.Join(ids, ",")), len(evs), 2*time.Minute)
}

// runOnce runs a one-shot step (migrate_only, register_only) of service
// name from bin, configured as the stack's service with env added, on an
// admin address of its own, and returns its output.
func runOnce(p *pipeline, name, bin string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", filepath.Join("..", "deploy", "config", name+".yaml"))
	prefix := "AUDITPIPE_" + strings.ToUpper(name) + "_"
	cmd.Env = append(append(append(os.Environ(), p.stack.Env(name)...), prefix+"ADMIN__ADDR="+freeAddr(p.t)), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// replaceService starts bin in place of the stopped service name (same
// configuration, same instance id).
func replaceService(t *testing.T, p *pipeline, name, bin string) {
	t.Helper()
	proc, err := devstack.StartProcess(name, bin, []string{"--config", filepath.Join("..", "deploy", "config", name+".yaml")}, p.stack.Env(name), p.out)
	require.NoError(t, err)
	p.stack.Procs[name] = proc
}

func registryClient(t *testing.T, p *pipeline) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(p.stack.Infra.RegistryURL))
	require.NoError(t, err)
	return cl
}

// v2Build is the build of the v2 enricher and loader.
type v2Build struct {
	done chan struct{}
	dir  string
	err  error
}

// buildSchemaV2 copies schemas/, pkg/, enricher/ and loader/ to a temporary
// directory, applies e2e/testdata/schema_v2.patch with git apply and
// builds the enricher and loader there, in the background.
func buildSchemaV2(t *testing.T) *v2Build {
	b := &v2Build{done: make(chan struct{}), dir: t.TempDir()}
	go func() {
		defer close(b.done)
		b.err = b.build()
	}()
	t.Cleanup(func() { <-b.done })
	return b
}

func (b *v2Build) build() error {
	for _, m := range []string{"schemas", "pkg", "enricher", "loader"} {
		if err := os.CopyFS(filepath.Join(b.dir, m), os.DirFS(filepath.Join("..", m))); err != nil {
			return fmt.Errorf("copying %s: %w", m, err)
		}
	}
	patch, err := filepath.Abs(filepath.Join("testdata", "schema_v2.patch"))
	if err != nil {
		return err
	}
	apply := exec.Command("git", "apply", patch)
	apply.Dir = b.dir
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("applying %s (regenerate it as its header says): %w\n%s", patch, err, out)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, svc := range []string{"enricher", "loader"} {
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", filepath.Join(b.dir, "bin", svc), "./cmd/"+svc)
			cmd.Dir = filepath.Join(b.dir, svc)
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building the v2 %s: %w\n%s", svc, err, out)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// wait returns the directory of the v2 binaries once built, after checking
// that the v2 schema passes the evolution check against v1.
func (b *v2Build) wait(t *testing.T) string {
	t.Helper()
	start := time.Now()
	<-b.done
	require.NoError(t, b.err)
	t.Logf("v2 binaries ready (waited %s)", time.Since(start).Round(time.Millisecond))
	var releases []schema.AvroRelease
	for v := 1; v <= 2; v++ {
		f := fmt.Sprintf("openai_audit_logs.v%d.avsc", v)
		text, err := fs.ReadFile(os.DirFS(filepath.Join(b.dir, "schemas", "avro")), f)
		require.NoError(t, err)
		releases = append(releases, schema.AvroRelease{Version: v, File: f, Schema: string(text)})
	}
	assert.Empty(t, schema.CheckEvolution(releases), "the v2 of the patch passes the evolution check")
	return filepath.Join(b.dir, "bin")
}

// pinnedReader is a third-party consumer pinned to schema v1: it reads the
// enriched topic from the start with hamba/avro's generic decoder, the v1
// file as reader schema and each record's writer schema from the registry,
// and knows nothing of auditpipe's Go types.
type pinnedReader struct {
	mu      sync.Mutex
	writers map[string]int // eventID → writer schema id
	ids     map[int]bool
	records int
	errs    []string
}

func startPinnedReader(t *testing.T, p *pipeline) *pinnedReader {
	text, err := os.ReadFile(v1File)
	require.NoError(t, err)
	reader, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
	require.NoError(t, err)
	reg := registryClient(t, p)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.stack.Infra.KafkaBrokers...), kgo.ConsumeTopics(enrichedTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	require.NoError(t, err)
	r := &pinnedReader{writers: map[string]int{}, ids: map[int]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	resolved := map[int]avro.Schema{}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { r.decode(ctx, reg, reader, resolved, rec) })
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return r
}

// decode decodes one record as a v1 reader would.
func (r *pinnedReader) decode(ctx context.Context, reg *sr.Client, reader avro.Schema, resolved map[int]avro.Schema, rec *kgo.Record) {
	fail := func(format string, args ...any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.errs = append(r.errs, fmt.Sprintf("offset %d/%d: ", rec.Partition, rec.Offset)+fmt.Sprintf(format, args...))
	}
	if len(rec.Value) < 5 || rec.Value[0] != 0 {
		fail("not the Confluent wire format")
		return
	}
	id := int(binary.BigEndian.Uint32(rec.Value[1:5]))
	sch, ok := resolved[id]
	if !ok {
		ws, err := reg.SchemaByID(ctx, id)
		if err != nil {
			fail("writer schema %d: %v", id, err)
			return
		}
		writer, err := avro.ParseWithCache(ws.Schema, "", &avro.SchemaCache{})
		if err != nil {
			fail("writer schema %d: %v", id, err)
			return
		}
		if sch, err = avro.NewSchemaCompatibility().Resolve(reader, writer); err != nil {
			fail("v1 cannot read writer schema %d: %v", id, err)
			return
		}
		resolved[id] = sch
	}
	var m map[string]any
	if err := avro.Unmarshal(sch, rec.Value[5:], &m); err != nil {
		fail("decoding with writer schema %d: %v", id, err)
		return
	}
	eventID, _ := m["eventID"].(string)
	if _, ok := m["actorUserAgent"]; ok || eventID == "" || len(m) != 46 {
		fail("writer schema %d: a v1 reader got %d fields (eventID %q)", id, len(m), eventID)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records++
	r.writers[eventID] = id
	r.ids[id] = true
}

// waitFor waits until every one of evs was read.
func (r *pinnedReader) waitFor(t *testing.T, evs []openaisim.Event) {
	t.Helper()
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range evs {
			if _, ok := r.writers[e.ID]; !ok {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond, "the v1 enricher did not write the events")
}

// writer returns the writer schema id of eventID's record (0: not read).
func (r *pinnedReader) writer(eventID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writers[eventID]
}

// writerIDs returns the writer schema ids read, ascending.
func (r *pinnedReader) writerIDs() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []int
	for id := range r.ids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// check waits until the reader has every served event, then checks it
// decoded every record of the topic without an error.
func (r *pinnedReader) check(t *testing.T, p *pipeline) {
	truth := p.sim.GroundTruth()
	r.waitFor(t, truth)
	want := endOffsets(t, p, enrichedTopic)
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		// Transaction markers take offsets too: at least one record per
		// event, at most the end offsets.
		return int64(r.records) >= int64(len(truth)) && int64(r.records) <= want
	}, time.Minute, 100*time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Empty(t, r.errs, "a reader pinned to v1 decodes every record")
	assert.Len(t, r.writers, len(truth), "every event, and nothing else")
	t.Logf("the v1-pinned reader decoded %d records of %d events, writer schemas %v", r.records, len(r.writers), r.ids)
}
