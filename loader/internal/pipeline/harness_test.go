package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/loader/internal/pipeline"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

const (
	topic = "openai-audit-enriched"
	dlq   = "openai-audit-dlq"
	group = "auditpipe-loader"
)

// env is one test's Kafka, registry and ClickHouse database.
type env struct {
	t       *testing.T
	cluster *kafkatest.Cluster
	reg     *kafkatest.FakeSchemaRegistry
	serde   *sr.Serde
	chURL   string
	db      string
	w       *chwriter.Writer // direct, for queries
}

func newEnv(t *testing.T, ddl func(string) string) *env {
	t.Helper()
	e := &env{t: t}
	e.cluster = kafkatest.NewCluster(t, kfake.SeedTopics(4, topic, dlq))
	e.reg = kafkatest.NewFakeSchemaRegistry(t)
	serde, _, err := schema.NewSerde(t.Context(), e.reg.Client(t), contract.SubjectEnriched, true)
	require.NoError(t, err)
	e.serde = serde
	e.chURL, e.db = chservertest.NewDatabase(t)
	if ddl != nil {
		migs, err := schema.Migrations(schema.MigrationOptions{Database: e.db})
		require.NoError(t, err)
		require.NoError(t, chservertest.Exec(e.chURL, ddl(migs[0].Statements[0])))
	}
	e.w = e.writer(strings.TrimPrefix(e.chURL, "http://"))
	_, err = e.w.Migrate(t.Context())
	require.NoError(t, err)
	return e
}

// writer returns a Writer on the test database through addr.
func (e *env) writer(addr string) *chwriter.Writer {
	cfg := chwriter.DefaultConfig()
	cfg.Protocol = chwriter.ProtocolHTTP
	cfg.Addr = []string{addr}
	cfg.Database = e.db
	cfg.DialTimeout = time.Second
	cfg.InsertTimeout = 10 * time.Second
	w, err := chwriter.New(cfg, nil)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = w.Close() })
	return w
}

// row returns a valid record identified by i.
func row(i int) schema.AuditLog {
	s := strconv.Itoa(i)
	now := time.Now().UTC().Truncate(time.Second)
	return schema.AuditLog{
		WorkspaceID: "ws", SourceID: "src", SourceType: "openai", SourceTTL: 365,
		ReceivedAt: now, ID: "id-" + s, EventTime: now.Add(-time.Duration(i) * time.Second),
		EventName: "login.succeeded", EventID: "evt-" + s, SrcIP: "203.0.113.7", SrcASNumber: int64(i),
		Actor: map[string]string{"type": "session"}, Resources: []string{"r" + s},
		Enrichments: []schema.Enrichment{{Name: "geo", Data: map[string]string{"k": s}}},
		RawLog:      `{"id":"` + s + `"}`,
	}
}

// produce writes rows [from, to) keyed by id, spread over the partitions.
func (e *env) produce(from, to int, mutate func(i int, l *schema.AuditLog)) {
	e.t.Helper()
	cl := e.cluster.Client(e.t)
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		l := row(i)
		if mutate != nil {
			mutate(i, &l)
		}
		b, err := e.serde.Encode(l)
		require.NoError(e.t, err)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("id-" + strconv.Itoa(i)), Value: b,
			Headers: []kgo.RecordHeader{{Key: "workspace_id", Value: []byte("ws")}}})
	}
	require.NoError(e.t, cl.ProduceSync(e.t.Context(), recs...).FirstErr())
}

func (e *env) produceRaw(key string, value []byte) {
	e.t.Helper()
	cl := e.cluster.Client(e.t)
	require.NoError(e.t, cl.ProduceSync(e.t.Context(), &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr())
}

func (e *env) count(query string) uint64 {
	e.t.Helper()
	var n uint64
	require.NoError(e.t, e.w.Conn().QueryRow(context.Background(), query).Scan(&n))
	return n
}

func (e *env) rows() uint64 { return e.count("SELECT count() FROM " + schema.Table) }

// requireExactlyOnce checks n rows, all distinct events, without FINAL.
func (e *env) requireExactlyOnce(n int) {
	e.t.Helper()
	require.Equal(e.t, uint64(n), e.rows(), "count()")
	require.Equal(e.t, uint64(n), e.count("SELECT uniqExact(eventID) FROM "+schema.Table), "uniqExact(eventID)")
}

// waitRows waits until the table holds n rows.
func (e *env) waitRows(n int, timeout time.Duration) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.rows() >= uint64(n) }, timeout, 20*time.Millisecond, "waiting for %d rows", n)
}

// committed returns the group's committed offsets summed over partitions,
// and the topic's end offsets summed.
func (e *env) committed() (committed, end int64) {
	e.t.Helper()
	adm := kadm.NewClient(e.cluster.Client(e.t))
	offs, err := adm.FetchOffsets(e.t.Context(), group)
	require.NoError(e.t, err)
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			committed += o.At
		}
	})
	ends, err := adm.ListEndOffsets(e.t.Context(), topic)
	require.NoError(e.t, err)
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	return committed, end
}

type loaderOpts struct {
	ins    pipeline.Inserter
	policy batch.Policy
	extra  []kgo.Opt
	reg    prometheus.Registerer
	drain  time.Duration
	// decoded, when set, counts the records decoded.
	decoded *atomic.Int64
}

// countingDecoder counts the Decode calls.
type countingDecoder struct {
	next pipeline.Decoder
	n    *atomic.Int64
}

func (d countingDecoder) Decode(ctx context.Context, b []byte, l *schema.AuditLog) (int, error) {
	d.n.Add(1)
	return d.next.Decode(ctx, b, l)
}

// loader is one running pipeline.
type loader struct {
	p      *pipeline.Pipeline
	cancel context.CancelFunc
	done   chan error
}

func (e *env) start(o loaderOpts) *loader {
	e.t.Helper()
	cfg := pipeline.DefaultConfig()
	cfg.Batch = batch.Policy{MaxRows: 500, MaxBytes: 8 << 20, MaxAge: 50 * time.Millisecond, BoundaryWait: 5 * time.Second}
	if o.policy.MaxRows > 0 {
		cfg.Batch = o.policy
	}
	cfg.RetryBackoff, cfg.RetryBackoffMax = 20*time.Millisecond, 200*time.Millisecond
	cfg.RevokeTimeout = 2 * time.Second
	cfg.DrainTimeout = 5 * time.Second
	if o.drain > 0 {
		cfg.DrainTimeout = o.drain
	}
	kcfg := e.cluster.Config()
	copts, err := kcfg.Options(nil, nil, "loader")
	require.NoError(e.t, err)
	copts = append(copts, kgo.FetchMaxWait(50*time.Millisecond), kgo.SessionTimeout(6*time.Second),
		kgo.RebalanceTimeout(3*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
	copts = append(copts, o.extra...)
	sd, err := schema.NewDecoder(e.reg.Client(e.t), 0)
	require.NoError(e.t, err)
	var dec pipeline.Decoder = sd
	if o.decoded != nil {
		dec = countingDecoder{next: sd, n: o.decoded}
	}
	ins := o.ins
	if ins == nil {
		ins = e.w
	}
	var logger *slog.Logger
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	p, err := pipeline.New(cfg, pipeline.Options{ClientOpts: copts, Decoder: dec, Inserter: ins, Registerer: o.reg, Logger: logger})
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- p.Run(ctx) }()
	e.t.Cleanup(func() { l.stop() })
	return l
}

// stop cancels the loader and returns Run's result (once; later calls
// return nil).
func (l *loader) stop() error {
	l.cancel()
	select {
	case err, ok := <-l.done:
		if ok {
			close(l.done)
		}
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("loader did not stop")
	}
}

// proxy forwards TCP connections to a target and can be taken down and
// brought back on the same address, to simulate a ClickHouse outage.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// down closes the listener and every connection.
func (p *proxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	p.wg.Wait()
}

// up listens again on the same address.
func (p *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serve(ln)
}
