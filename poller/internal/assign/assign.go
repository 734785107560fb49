package assign

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler reacts to ownership changes. Calls are serial, from the group's
// management goroutine.
type Handler interface {
	// Assigned hands over partitions; it should start their work and
	// return promptly.
	Assigned(ctx context.Context, partitions []int32)
	// Revoked takes partitions away; it must stop their work (ending any
	// open transaction) before returning, because the group hands them to
	// another replica as soon as it returns.
	Revoked(ctx context.Context, partitions []int32)
}

// Config configures a Coordinator.
type Config struct {
	// Group is the consumer group id, shared by every replica.
	Group string
	// Topic is the state topic whose partitions are the units of work.
	Topic string
	// InstanceID, when set, makes the replica a static group member: a
	// restart takes its partitions back without a rebalance (see
	// kafka.Membership).
	InstanceID string
	// SessionTimeout is how long a silent replica keeps its partitions.
	SessionTimeout time.Duration
	// HeartbeatInterval defaults to a tenth of SessionTimeout.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long Revoked may take.
	RebalanceTimeout time.Duration
}

// Coordinator is one replica's membership in the group.
type Coordinator struct {
	cl     *kgo.Client
	topic  string
	logger *slog.Logger
}

// Partition returns the state topic partition of a source: FNV-1a of the
// source id modulo the partition count. Every replica computes the same.
func Partition(sourceID string, partitions int32) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sourceID))
	return int32(h.Sum32() % uint32(partitions))
}

// New joins the group with the base client options (brokers, TLS, SASL…)
// once Run is called. The member consumes the state topic only to hold its
// assignment; the records it reads are discarded.
func New(base []kgo.Opt, cfg Config, h Handler, logger *slog.Logger) (*Coordinator, error) {
	if cfg.Group == "" || cfg.Topic == "" {
		return nil, errors.New("creating coordinator: group and topic are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = max(cfg.SessionTimeout/10, 100*time.Millisecond)
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = time.Minute
	}
	topicParts := func(m map[string][]int32) []int32 {
		ps := slices.Clone(m[cfg.Topic])
		slices.Sort(ps)
		return ps
	}
	opts := append(slices.Clone(base),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.FetchMaxBytes(1<<20),
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			ps := topicParts(m)
			logger.Info("state partitions assigned", slog.Any("partitions", ps))
			h.Assigned(ctx, ps)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			ps := topicParts(m)
			if len(ps) == 0 {
				return
			}
			logger.Info("state partitions revoked", slog.Any("partitions", ps))
			h.Revoked(ctx, ps)
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			ps := topicParts(m)
			logger.Warn("state partitions lost", slog.Any("partitions", ps))
			h.Revoked(ctx, ps)
		}),
	)
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating coordinator client: %w", err)
	}
	return &Coordinator{cl: cl, topic: cfg.Topic, logger: logger}, nil
}

// Run stays in the group until ctx is done, then leaves it (revoking every
// partition through the Handler first) and returns nil. It blocks.
func (c *Coordinator) Run(ctx context.Context) error {
	defer c.cl.Close() // leaves the group; Revoked runs for what is owned
	for {
		fs := c.cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			return nil
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, kgo.ErrClientClosed) {
				continue
			}
			c.logger.Warn("coordination group fetch", slog.String("topic", fe.Topic), slog.Int("partition", int(fe.Partition)), slog.String("error", fe.Err.Error()))
		}
		if fs.IsClientClosed() {
			return nil
		}
	}
}
