package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/poller/internal/assign"
	"github.com/auditpipe/auditpipe/poller/internal/collect"
	"github.com/auditpipe/auditpipe/poller/internal/health"
	"github.com/auditpipe/auditpipe/poller/internal/state"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// fleet starts and stops the sources of the state partitions this replica
// owns. Its methods are safe for concurrent use. The goroutine running a
// source is the only writer of its health; readiness and the metrics
// scrape read it.
type fleet struct {
	cfg Config
	o   options
	// base returns fresh client options (brokers, TLS, SASL, no metrics).
	// kgo options must not be shared between concurrent NewClient calls
	// (validation rewrites the compression codecs in place).
	base        func() ([]kgo.Opt, error)
	reg         prometheus.Registerer
	logger      *slog.Logger
	metrics     *collect.Metrics
	codec       *state.Codec
	version     string
	httpClient  *http.Client
	scrubber    *config.Scrubber // every secret of the configuration
	partitions  int32
	recordLimit int            // the largest raw record the producer can write
	slices      *collect.Slots // the slices collected at once, across sources
	byPartition map[int32][]SourceConfig
	health      map[string]*health.Source // by source id, fixed at start

	mu      sync.Mutex
	running map[string]*runningSource
}

type runningSource struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// fleetSetup is what a fleet is built from, besides the configuration.
type fleetSetup struct {
	sources     []SourceConfig // with defaults applied
	partitions  int32          // of the state topic
	recordLimit int            // the largest raw record, in bytes
	base        func() ([]kgo.Opt, error)
	reg         prometheus.Registerer
	logger      *slog.Logger
	metrics     *collect.Metrics
	codec       *state.Codec
	version     string
}

func newFleet(cfg Config, o options, fs fleetSetup) *fleet {
	f := &fleet{
		cfg: cfg, o: o, base: fs.base, reg: fs.reg, logger: fs.logger, metrics: fs.metrics, codec: fs.codec, version: fs.version,
		// upstream.New makes the clients of this transport follow no redirect.
		httpClient:  &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}},
		scrubber:    config.NewScrubber(config.SecretsOf(cfg)...),
		partitions:  fs.partitions,
		recordLimit: fs.recordLimit,
		slices:      collect.NewSlots(cfg.Slices()),
		byPartition: map[int32][]SourceConfig{},
		health:      map[string]*health.Source{},
		running:     map[string]*runningSource{},
	}
	for _, s := range fs.sources {
		p := assign.Partition(s.SourceID, fs.partitions)
		f.byPartition[p] = append(f.byPartition[p], s)
		f.health[s.SourceID] = health.NewSource(f.healthRule(s))
	}
	return f
}

// healthRule is when source s stops counting as healthy: no progress for
// three poll intervals (at least a minute), or three failed cycles or
// sessions in a row.
func (f *fleet) healthRule(s SourceConfig) health.Rule {
	r := health.Rule{StallAfter: max(3*s.PollInterval, time.Minute), FailingAfter: 3}
	if f.o.stallAfter > 0 {
		r.StallAfter = f.o.stallAfter
	}
	return r
}

// Assigned starts the sources of partitions.
func (f *fleet) Assigned(ctx context.Context, partitions []int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range partitions {
		for _, s := range f.byPartition[p] {
			if _, ok := f.running[s.SourceID]; ok {
				continue
			}
			sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			rs := &runningSource{cancel: cancel, done: make(chan struct{})}
			f.running[s.SourceID] = rs
			f.health[s.SourceID].Start(time.Now())
			go func() {
				defer close(rs.done)
				f.runSource(sctx, s, p)
			}()
		}
	}
}

// Revoked stops the sources of partitions and waits for them.
func (f *fleet) Revoked(_ context.Context, partitions []int32) {
	var ids []string
	for _, p := range partitions {
		for _, s := range f.byPartition[p] {
			ids = append(ids, s.SourceID)
		}
	}
	f.stop(ids)
}

// stopAll stops every running source and waits for them.
func (f *fleet) stopAll() {
	f.mu.Lock()
	ids := make([]string, 0, len(f.running))
	for id := range f.running {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	f.stop(ids)
}

func (f *fleet) stop(ids []string) {
	f.mu.Lock()
	var wait []*runningSource
	for _, id := range ids {
		if rs, ok := f.running[id]; ok {
			rs.cancel()
			wait = append(wait, rs)
			delete(f.running, id)
		}
	}
	f.mu.Unlock()
	for _, rs := range wait {
		<-rs.done
	}
	if len(ids) > 0 {
		f.logger.Info("sources stopped", slog.Any("source_ids", ids))
	}
}

// owned returns the ids of the running sources, sorted.
func (f *fleet) owned() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.running))
	for id := range f.running {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ownedHealth returns the health of the running sources by id.
func (f *fleet) ownedHealth() map[string]*health.Source {
	ids := f.owned()
	out := make(map[string]*health.Source, len(ids))
	for _, id := range ids {
		out[id] = f.health[id]
	}
	return out
}

// ready fails while an owned source is failing or stalled (health.Rule),
// with a bounded text free of upstream text.
func (f *fleet) ready(context.Context) error {
	return health.Readiness(time.Now(), f.ownedHealth())
}

// unhealthyDesc describes the gauge of the owned sources by health state.
var unhealthyDesc = prometheus.NewDesc("auditpipe_poller_sources_unhealthy",
	"Sources this replica owns that are failing (3 failed cycles or sessions in a row, or a refused key) or stalled (no progress for 3 poll intervals): /readyz is false while any is.",
	[]string{"state"}, nil)

// Describe implements prometheus.Collector.
func (f *fleet) Describe(ch chan<- *prometheus.Desc) { ch <- unhealthyDesc }

// Collect implements prometheus.Collector: the unhealthy sources, counted
// at scrape time.
func (f *fleet) Collect(ch chan<- prometheus.Metric) {
	for st, n := range health.Count(time.Now(), f.ownedHealth()) {
		ch <- prometheus.MustNewConstMetric(unhealthyDesc, prometheus.GaugeValue, float64(n), string(st))
	}
}

// runSource runs sessions of one source until ctx is done, restarting
// after failures with the retry policy (1 s to 30 s; back to 1 s after a
// session that committed).
func (f *fleet) runSource(ctx context.Context, s SourceConfig, partition int32) {
	logger := f.logger.With(slog.String("source_id", s.SourceID))
	logger.Info("source started", slog.Int("state_partition", int(partition)))
	policy := retry.Policy{Initial: time.Second, Max: 30 * time.Second}
	if f.o.errorRetry > 0 {
		policy.Initial = f.o.errorRetry
	}
	restarts := retry.NewBackoff(policy)
	for {
		progressed, err := f.session(ctx, s, partition, logger)
		if ctx.Err() != nil {
			return
		}
		f.health[s.SourceID].Failed(collect.ProblemOf(err))
		if progressed {
			restarts.Reset()
		}
		delay := restarts.Next()
		if isFenced(err) {
			// Another replica owns the source now; the group will take
			// the partition away from us. Retry slowly in case it does not.
			logger.Error("producer fenced: another replica took this source over", slog.String("error", err.Error()))
			delay = max(delay, f.cfg.SessionTimeout)
		} else {
			logger.Error("source session failed; restarting from the committed state", slog.String("error", err.Error()), slog.Duration("in", delay))
		}
		if restarts.Sleep(ctx, delay) != nil {
			return
		}
	}
}

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.InvalidProducerIDMapping)
}

// session is one life of a source: a transactional producer that fences
// any previous owner, the state read back, and the collector.
// It reports whether it committed anything.
func (f *fleet) session(ctx context.Context, s SourceConfig, partition int32, logger *slog.Logger) (bool, error) {
	stateTopic := f.cfg.Topics.State.Name
	rawPartitioner := kgo.StickyKeyPartitioner(nil)
	cl, err := kafka.NewClient(f.cfg.Kafka, logger, f.reg, "source-"+s.SourceID,
		kgo.TransactionalID("auditpipe-poller-"+s.SourceID),
		kgo.TransactionTimeout(f.cfg.Collection.TransactionTimeout),
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(topic string) func(*kgo.Record, int) int {
			if topic == stateTopic {
				return func(r *kgo.Record, _ int) int { return int(r.Partition) }
			}
			tp := rawPartitioner.ForTopic(topic)
			return func(r *kgo.Record, n int) int { return tp.Partition(r, n) }
		})),
	)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	// Initialising the producer id fences a previous owner and aborts its
	// open transaction, so that the state below is final.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return false, fmt.Errorf("initialising transactional producer: %w", err)
	}
	idle := 500 * time.Millisecond
	if f.o.stateReadIdle > 0 {
		idle = f.o.stateReadIdle
	}
	opts, err := f.base()
	if err != nil {
		return false, err
	}
	st, err := loadState(ctx, opts, stateTopic, partition, s.SourceID, f.codec, idle)
	if err != nil {
		return false, err
	}
	logger.Info("state loaded", slog.Int("dedup_ids", st.Seen.Len()), slog.Any("streams", st.Streams), slog.Int64("floor", st.Floor))
	c, err := f.collector(s, partition, st, cl, logger)
	if err != nil {
		return false, err
	}
	err = c.Run(ctx)
	return c.Commits() > 0, err
}

// collector builds the collector of source s from its loaded state st,
// committing through the transactional client cl.
func (f *fleet) collector(s SourceConfig, partition int32, st state.State, cl *kgo.Client, logger *slog.Logger) (*collect.Collector, error) {
	ucfg := upstream.Config{
		BaseURL:        s.BaseURL,
		Key:            s.AdminKey,
		Scrubber:       f.scrubber,
		HTTP:           f.httpClient,
		RequestTimeout: f.cfg.Collection.RequestTimeout,
		MaxAttempts:    f.cfg.Collection.MaxAttempts,
		UserAgent:      "auditpipe-poller/" + f.version,
		OnAttempt:      f.metrics.OnAttempt(s.SourceID),
	}
	if f.o.apiBackoff > 0 {
		ucfg.Backoff = retry.Policy{Initial: f.o.apiBackoff, Max: 10 * f.o.apiBackoff}
	}
	api, err := upstream.New(ucfg, logger)
	if err != nil {
		return nil, err
	}
	var committer collect.Committer = collect.NewKafkaCommitter(cl, f.cfg.Collection.TransactionTimeout)
	if f.o.wrapCommitter != nil {
		committer = f.o.wrapCommitter(s.SourceID, committer)
	}
	return collect.New(f.collectSource(s), st, collect.Options{
		API:       api,
		Committer: committer,
		Codec:     f.codec,
		Topics:    collect.Topics{Raw: f.cfg.Topics.Raw.Name, State: f.cfg.Topics.State.Name, DLQ: f.cfg.Topics.DLQ.Name, StatePartition: partition},
		Metrics:   f.metrics,
		Health:    f.health[s.SourceID],
		Scrubber:  f.scrubber,
		Logger:    logger,
		Version:   f.version,
		Slices:    f.slices,
	}), nil
}

// collectSource turns a configured source (defaults applied) into what the
// collector runs.
func (f *fleet) collectSource(s SourceConfig) collect.Source {
	cc := f.cfg.Collection
	src := collect.Source{
		ID:             s.SourceID,
		WorkspaceID:    s.WorkspaceID,
		TTLDays:        s.SourceTTLDays,
		Tags:           s.Tags,
		Streams:        s.streams(),
		PollInterval:   s.PollInterval,
		Backfill:       s.Backfill,
		RescanWindow:   s.RescanWindow,
		RescanInterval: s.RescanInterval,
		Overlap:        s.Overlap,
		Slice:          cc.Slice,
		MaxSliceEvents: cc.MaxSliceEvents,
		MaxRecordBytes: f.recordLimit,
		PageSize:       s.PageSize,
		DedupCapacity:  cc.DedupCapacity,
		StateLimit:     stateLimit,
		AuthRetry:      cc.AuthRetryInterval,
	}
	if f.o.pollInterval > 0 {
		src.PollInterval = f.o.pollInterval
	}
	if f.o.rescanInterval > 0 {
		src.RescanInterval = f.o.rescanInterval
	}
	if f.o.errorRetry > 0 {
		src.ErrorRetry = f.o.errorRetry
		src.AuthRetry = f.o.errorRetry
	}
	return src
}

// stateLimit keeps a state record (plus its batch overhead) under the
// broker's default message.max.bytes of 1,048,588 bytes.
const stateLimit = 950_000
