package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProgressConfig configures a ProgressWatch.
type ProgressConfig struct {
	// Group is the consumer group to watch and Topic the topic it reads.
	Group, Topic string
	// StallTimeout is how long a partition may have records to consume
	// while the group's committed offset does not move before it counts
	// as stalled.
	StallTimeout time.Duration
	// Interval is how often the group is checked; 0 means StallTimeout/4,
	// at most 15 s.
	Interval time.Duration
}

// ProgressOption adjusts a ProgressWatch (tests use it for the clock).
type ProgressOption func(*ProgressWatch)

// WithProgressClock sets the watch's clock.
func WithProgressClock(now func() time.Time) ProgressOption {
	return func(w *ProgressWatch) { w.now = now }
}

// ProgressWatch notices when a consumer group stops making progress on a
// partition of the topic it reads: the partition has records to consume
// (its last stable offset is more than one past the committed offset: one
// is the commit marker that ends every transaction) and the committed
// offset has not moved for StallTimeout. This covers a member that is stuck
// (a flush that never completes, a paused fetch), a partition owned by a
// member that is gone but still counted by the coordinator, and a group
// stuck in a rebalance (a join that never completes), where no member owns
// the partition.
//
// A stalled partition is logged as a warning (partition, committed and end
// offsets, owner), counted in auditpipe_consumer_stalls_total, kept in
// auditpipe_consumer_stalled_partitions, and makes Ready fail until the
// partition moves again. The per-partition lag is exported as
// auditpipe_consumer_lag_records. When the stalled partition is not this
// member's own, the watch also calls the remedy (at most once per
// StallTimeout), e.g. kgo.Client.ForceRebalance: a rebalance removes
// members that no longer answer.
//
// The watch only reads the group's state; it never exits the process.
// Ready, Run and Check are safe for concurrent use.
type ProgressWatch struct {
	cfg    ProgressConfig
	adm    *kadm.Client
	self   func() string
	remedy func()
	logger *slog.Logger
	now    func() time.Time

	lag     *prometheus.GaugeVec
	stalled prometheus.Gauge
	stalls  prometheus.Counter

	mu         sync.Mutex
	parts      map[int32]*partitionProgress
	lastRemedy time.Time
}

type partitionProgress struct {
	committed int64
	since     time.Time // when committed last moved, or the partition was last caught up
	stalled   bool
}

// PartitionStall describes a stalled partition.
type PartitionStall struct {
	Partition int32
	Committed int64 // -1: the group never committed an offset
	End       int64 // the last stable offset
	Owner     string
	For       time.Duration
}

func (s PartitionStall) String() string {
	owner := s.Owner
	if owner == "" {
		owner = "no member (the group is rebalancing)"
	}
	return fmt.Sprintf("partition %d: committed %d, end %d, no progress for %s, owner %s", s.Partition, s.Committed, s.End, s.For.Round(time.Second), owner)
}

// NewProgressWatch returns a watch over cfg.Group on cfg.Topic through adm.
// self returns this member's id (kgo.Client.GroupMetadata), remedy is
// called for stalls on partitions this member does not own; both may be
// nil. reg receives the metrics (nil: not exported).
func NewProgressWatch(cfg ProgressConfig, adm *kadm.Client, self func() string, remedy func(), logger *slog.Logger, reg prometheus.Registerer, opts ...ProgressOption) (*ProgressWatch, error) {
	if cfg.Group == "" || cfg.Topic == "" || cfg.StallTimeout <= 0 || adm == nil {
		return nil, errors.New("creating progress watch: group, topic, a positive stall timeout and an admin client are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(cfg.StallTimeout/4, 15*time.Second)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	labels := prometheus.Labels{"group": cfg.Group, "topic": cfg.Topic}
	w := &ProgressWatch{
		cfg: cfg, adm: adm, self: self, remedy: remedy, now: time.Now,
		logger: logger.With(slog.String("component", "progress"), slog.String("group", cfg.Group), slog.String("topic", cfg.Topic)),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: MetricsNamespace, Subsystem: "consumer", Name: "lag_records",
			Help: "Records between the group's committed offset and the partition's last stable offset (1 is the marker that ends a transaction).", ConstLabels: labels}, []string{"partition"}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: MetricsNamespace, Subsystem: "consumer", Name: "stalled_partitions",
			Help: "Partitions with records to consume whose committed offset has not moved for the stall timeout.", ConstLabels: labels}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{Namespace: MetricsNamespace, Subsystem: "consumer", Name: "stalls_total",
			Help: "Times a partition became stalled.", ConstLabels: labels}),
		parts: map[int32]*partitionProgress{},
	}
	for _, o := range opts {
		o(w)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{w.lag, w.stalled, w.stalls} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering progress metrics: %w", err)
			}
		}
	}
	return w, nil
}

// Run checks the group every interval until ctx is done; it returns nil.
// A failed check (the cluster is unreachable) is logged at debug level and
// changes nothing: the service's Kafka readiness check reports that.
func (w *ProgressWatch) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, w.cfg.Interval)
		_, err := w.Check(cctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			w.logger.Debug("checking group progress", slog.String("error", err.Error()))
		}
	}
}

// Start runs Run on a goroutine of its own; the returned stop ends it and
// waits for it.
func (w *ProgressWatch) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// Ready returns an error naming every stalled partition, or nil.
func (w *ProgressWatch) Ready(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var bad []string
	for _, p := range slices.Sorted(maps.Keys(w.parts)) {
		if w.parts[p].stalled {
			bad = append(bad, strconv.Itoa(int(p)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("group %s makes no progress on %s partition(s) %s (see the warning log)", w.cfg.Group, w.cfg.Topic, strings.Join(bad, ", "))
	}
	return nil
}

// groupView is one reading of the group.
type groupView struct {
	committed map[int32]int64 // absent: never committed
	end       map[int32]int64
	owner     map[int32]string // member id
	hosts     map[string]string
	state     string
}

// Check reads the group once, updates the metrics and the stalled set, and
// returns the partitions stalled now.
func (w *ProgressWatch) Check(ctx context.Context) ([]PartitionStall, error) {
	v, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	now := w.now()
	self := ""
	if w.self != nil {
		self = w.self()
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	var stalls []PartitionStall
	foreign := false
	for p, end := range v.end {
		st := w.observe(p, v, end, now)
		if st == nil {
			continue
		}
		stalls = append(stalls, *st)
		if st.Owner == "" || st.Owner != self {
			foreign = true
		}
	}
	slices.SortFunc(stalls, func(a, b PartitionStall) int { return int(a.Partition - b.Partition) })
	w.stalled.Set(float64(len(stalls)))
	if foreign && w.remedy != nil && now.Sub(w.lastRemedy) >= w.cfg.StallTimeout {
		w.lastRemedy = now
		w.logger.Warn("asking the group to rebalance: a rebalance removes members that no longer answer", slog.String("group_state", v.state))
		w.remedy()
	}
	return stalls, nil
}

// observe updates partition p's progress and returns its stall, if any.
// The caller holds w.mu.
func (w *ProgressWatch) observe(p int32, v groupView, end int64, now time.Time) *PartitionStall {
	committed, ok := v.committed[p]
	if !ok {
		committed = -1
	}
	lag := end - max(committed, 0)
	w.lag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(max(lag, 0)))

	pp := w.parts[p]
	if pp == nil || pp.committed != committed || lag <= 1 {
		if pp != nil && pp.stalled {
			w.logger.Info("partition makes progress again", slog.Int("partition", int(p)), slog.Int64("committed", committed), slog.Int64("end", end))
		}
		w.parts[p] = &partitionProgress{committed: committed, since: now}
		return nil
	}
	stalledFor := now.Sub(pp.since)
	if stalledFor < w.cfg.StallTimeout {
		return nil
	}
	st := &PartitionStall{Partition: p, Committed: committed, End: end, Owner: v.owner[p], For: stalledFor}
	if !pp.stalled {
		pp.stalled = true
		w.stalls.Inc()
		w.logger.Warn("consumer group makes no progress on a partition",
			slog.Int("partition", int(p)), slog.Int64("committed", committed), slog.Int64("end", end),
			slog.Int64("lag", lag), slog.Duration("stalled_for", stalledFor.Round(time.Second)),
			slog.String("owner", st.Owner), slog.String("owner_host", v.hosts[st.Owner]), slog.String("group_state", v.state))
	}
	return st
}

// read describes the group and lists its committed and the topic's last
// stable offsets.
func (w *ProgressWatch) read(ctx context.Context) (groupView, error) {
	v := groupView{committed: map[int32]int64{}, end: map[int32]int64{}, owner: map[int32]string{}, hosts: map[string]string{}}
	ends, err := w.adm.ListCommittedOffsets(ctx, w.cfg.Topic)
	if err != nil {
		return v, fmt.Errorf("listing end offsets of %s: %w", w.cfg.Topic, err)
	}
	for _, o := range ends[w.cfg.Topic] {
		if o.Err == nil {
			v.end[o.Partition] = o.Offset
		}
	}
	offs, err := w.adm.FetchOffsets(ctx, w.cfg.Group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return v, nil // no member has joined yet: nothing committed, nobody owns anything
	}
	if err != nil {
		return v, fmt.Errorf("fetching committed offsets of %s: %w", w.cfg.Group, err)
	}
	for p, o := range offs[w.cfg.Topic] {
		if o.Err == nil && o.At >= 0 {
			v.committed[p] = o.At
		}
	}
	described, err := w.adm.DescribeGroups(ctx, w.cfg.Group)
	if err != nil {
		return v, fmt.Errorf("describing group %s: %w", w.cfg.Group, err)
	}
	g := described[w.cfg.Group]
	v.state = g.State
	for _, m := range g.Members {
		v.hosts[m.MemberID] = m.ClientHost
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				if t.Topic == w.cfg.Topic {
					for _, p := range t.Partitions {
						v.owner[p] = m.MemberID
					}
				}
			}
		}
	}
	return v, nil
}

// NewConsumerProgressWatch watches the group cl is a member of: cl serves
// the admin requests, names this member, and is asked to rebalance when a
// partition it does not own stalls.
func NewConsumerProgressWatch(cl *kgo.Client, cfg ProgressConfig, logger *slog.Logger, reg prometheus.Registerer, opts ...ProgressOption) (*ProgressWatch, error) {
	self := func() string {
		id, _ := cl.GroupMetadata()
		return id
	}
	return NewProgressWatch(cfg, kadm.NewClient(cl), self, cl.ForceRebalance, logger, reg, opts...)
}
