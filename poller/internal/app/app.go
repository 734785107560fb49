package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/service"
	"github.com/auditpipe/auditpipe/poller/internal/assign"
	"github.com/auditpipe/auditpipe/poller/internal/collect"
	"github.com/auditpipe/auditpipe/poller/internal/state"
)

// Poller is the poller service. Build it with New and run it once with Run.
type Poller struct {
	cfg     Config
	s       service.Settings
	o       options
	sources []SourceConfig // cfg.Sources with defaults applied
}

// Option changes a Poller built by New. Options exist for tests, which run
// faster than the configuration allows; production passes none.
type Option func(*options)

// options are the test hooks; the zero value is production.
type options struct {
	pollInterval   time.Duration // overrides every source's poll_interval
	rescanInterval time.Duration // overrides every source's rescan_interval
	errorRetry     time.Duration // pause after a failed cycle and first source restart delay
	apiBackoff     time.Duration // the API client's first backoff (its cap is 10×)
	stateReadIdle  time.Duration // idle poll of the state reader
	heartbeat      time.Duration // coordination group heartbeat
	stallAfter     time.Duration // a source without progress this long is stalled
	wrapCommitter  func(sourceID string, c collect.Committer) collect.Committer
}

// WithPollInterval sets every source's poll interval, below the 10 s the
// configuration allows.
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.pollInterval = d } }

// WithRescanInterval sets every source's re-scan interval.
func WithRescanInterval(d time.Duration) Option { return func(o *options) { o.rescanInterval = d } }

// WithErrorRetry sets the pause after a failed poll cycle or a failed
// authentication, and the first delay of a source's restarts.
func WithErrorRetry(d time.Duration) Option { return func(o *options) { o.errorRetry = d } }

// WithAPIBackoff sets the first backoff of the API client (capped at 10×).
func WithAPIBackoff(d time.Duration) Option { return func(o *options) { o.apiBackoff = d } }

// WithStateReadIdle sets how long the state reader waits for a record.
func WithStateReadIdle(d time.Duration) Option { return func(o *options) { o.stateReadIdle = d } }

// WithHeartbeat sets the coordination group's heartbeat interval.
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithStallAfter sets how long a source may go without progress before
// it counts as stalled.
func WithStallAfter(d time.Duration) Option { return func(o *options) { o.stallAfter = d } }

// WithCommitter wraps each source's committer (fault injection).
func WithCommitter(wrap func(sourceID string, c collect.Committer) collect.Committer) Option {
	return func(o *options) { o.wrapCommitter = wrap }
}

// New validates cfg and returns the poller. It contacts nothing.
func New(cfg Config, s service.Settings, opts ...Option) (*Poller, error) {
	if err := config.Validate(cfg); err != nil {
		return nil, fmt.Errorf("invalid poller configuration: %w", err)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Kafka = cfg.sizedKafka()
	p := &Poller{cfg: cfg, s: s, sources: make([]SourceConfig, len(cfg.Sources))}
	for _, opt := range opts {
		opt(&p.o)
	}
	for i, src := range cfg.Sources {
		p.sources[i] = src.withDefaults()
	}
	return p, nil
}

// Run is the service's entry point for service.Main: New, then
// Poller.Run.
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	p, err := New(cfg, s)
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// Run creates the topics when missing, joins the coordination group and
// collects the sources of the state partitions this replica is assigned,
// until ctx is done; then it ends or aborts every open transaction, leaves
// the group and returns. Call it once.
func (p *Poller) Run(ctx context.Context) error {
	cfg, s, logger := p.cfg, p.s, p.s.Logger
	logger.Info("sized from memory.limit", slog.String("memory_limit", cfg.Memory.Limit.String()), slog.Int("sources", len(cfg.Sources)),
		slog.String("per_source", cfg.perSource().String()), slog.Int("slices_at_once", cfg.Slices()))
	if len(p.sources) == 0 {
		logger.Warn("no sources configured: the poller will only hold its share of the coordination group")
	}
	adminCl, err := kafka.NewClient(cfg.Kafka, logger, s.Metrics, "poller-admin")
	if err != nil {
		return err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	stateTopic, partitions, err := p.ensureTopics(ctx, adm)
	if err != nil {
		return err
	}
	recordLimit := p.rawRecordLimit(ctx, adm)
	if s.Admin != nil {
		s.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, adminCl) })
	}
	codec, err := state.NewCodec()
	if err != nil {
		return err
	}
	defer codec.Close()
	baseFn := func() ([]kgo.Opt, error) { return cfg.Kafka.Options(logger, nil, "poller") }
	f := newFleet(cfg, p.o, fleetSetup{sources: p.sources, partitions: partitions, recordLimit: recordLimit, base: baseFn,
		reg: s.Metrics, logger: logger, metrics: collect.NewMetrics(s.Metrics), codec: codec, version: s.Version})
	defer f.httpClient.CloseIdleConnections()
	if s.Metrics != nil {
		s.Metrics.MustRegister(f)
	}
	if s.Admin != nil {
		s.Admin.AddCheck("sources", f.ready)
	}
	coord, err := p.coordinator(stateTopic, f)
	if err != nil {
		return err
	}
	logger.Info("poller running", slog.Int("sources", len(p.sources)), slog.Int("state_partitions", int(partitions)),
		slog.String("group", cfg.Group), slog.String("instance_id", cfg.InstanceID))
	err = coord.Run(ctx)
	f.stopAll()
	if lerr := cfg.Membership.Leave(cfg.Kafka, cfg.Group); lerr != nil {
		logger.Warn("leaving the coordination group", slog.Any("error", lerr))
	}
	return err
}

// ensureTopics creates the raw and state topics when missing (the state
// topic always compacted) and returns the state topic's name and
// partition count.
func (p *Poller) ensureTopics(ctx context.Context, adm *kadm.Client) (string, int32, error) {
	stateSpec := p.cfg.Topics.State
	stateSpec.Configs = maps.Clone(stateSpec.Configs)
	if stateSpec.Configs == nil {
		stateSpec.Configs = map[string]string{}
	}
	delete(stateSpec.Configs, "cleanup_policy")
	stateSpec.Configs["cleanup.policy"] = "compact"
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := kafka.EnsureTopics(tctx, adm, p.s.Logger, p.cfg.Topics.Raw, stateSpec, p.cfg.Topics.DLQ)
	cancel()
	if err != nil {
		return "", 0, fmt.Errorf("ensuring topics: %w", err)
	}
	desc, err := kafka.DescribeTopic(ctx, adm, stateSpec.Name)
	if err != nil {
		return "", 0, err
	}
	if desc.Partitions <= 0 {
		return "", 0, fmt.Errorf("state topic %q has no known partitions yet; retry", stateSpec.Name)
	}
	return stateSpec.Name, desc.Partitions, nil
}

// Record limits: Kafka's default max.message.bytes (a broker's
// message.max.bytes) and franz-go's default ProducerBatchMaxBytes, which
// the poller's producers keep.
const (
	brokerDefaultMaxMessageBytes = 1_048_588
	producerBatchMaxBytes        = 1_000_012
)

// rawRecordLimit returns the largest raw record the producers can write:
// the raw topic's max.message.bytes (the broker default when it cannot be
// described) and the producer's batch limit, whichever is lower.
func (p *Poller) rawRecordLimit(ctx context.Context, adm *kadm.Client) int {
	limit, source := brokerDefaultMaxMessageBytes, "the broker default"
	desc, err := kafka.DescribeTopic(ctx, adm, p.cfg.Topics.Raw.Name)
	if v, ok := desc.Configs["max.message.bytes"]; err == nil && ok {
		if n, perr := strconv.Atoi(v); perr == nil && n > 0 {
			limit, source = n, "the raw topic's max.message.bytes"
		}
	}
	if limit > producerBatchMaxBytes {
		limit, source = producerBatchMaxBytes, "the producer's batch limit"
	}
	p.s.Logger.Info("raw record limit: larger events are dead-lettered", slog.Int("bytes", limit), slog.String("from", source),
		slog.String("dlq_topic", p.cfg.Topics.DLQ.Name))
	return limit
}

// coordinator joins the coordination group over the state topic's
// partitions, handing them to f.
func (p *Poller) coordinator(stateTopic string, f *fleet) (*assign.Coordinator, error) {
	base, err := p.cfg.Kafka.Options(p.s.Logger, nil, "poller")
	if err != nil {
		return nil, err
	}
	acfg := assign.Config{Group: p.cfg.Group, Topic: stateTopic, InstanceID: p.cfg.InstanceID,
		SessionTimeout: p.cfg.SessionTimeout, RebalanceTimeout: p.cfg.RebalanceTimeout}
	if p.o.heartbeat > 0 {
		acfg.HeartbeatInterval = p.o.heartbeat
	}
	return assign.New(base, acfg, f, p.s.Logger)
}
