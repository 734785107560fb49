package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/service"
	"github.com/auditpipe/auditpipe/poller/internal/assign"
	"github.com/auditpipe/auditpipe/poller/internal/collect"
	"github.com/auditpipe/auditpipe/poller/internal/state"
)

// Run creates the topics when missing, joins the coordination group and
// collects the sources of the state partitions this replica is assigned,
// until ctx is done; then it ends or aborts every open transaction, leaves
// the group and returns.
func Run(ctx context.Context, cfg Config, s service.Settings) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Kafka = cfg.sizedKafka()
	logger.Info("sized from memory.limit", slog.String("memory_limit", cfg.Memory.Limit.String()), slog.Int("sources", len(cfg.Sources)),
		slog.String("per_source", cfg.perSource().String()), slog.Int("slices_at_once", cfg.Slices()))
	sources := make([]SourceConfig, len(cfg.Sources))
	for i, src := range cfg.Sources {
		sources[i] = src.withDefaults()
	}
	if len(sources) == 0 {
		logger.Warn("no sources configured: the poller will only hold its share of the coordination group")
	}

	adminCl, err := kafka.NewClient(cfg.Kafka, logger, s.Registry, "poller-admin")
	if err != nil {
		return err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	stateSpec := cfg.Topics.State
	stateSpec.Configs = maps.Clone(stateSpec.Configs)
	if stateSpec.Configs == nil {
		stateSpec.Configs = map[string]string{}
	}
	delete(stateSpec.Configs, "cleanup_policy")
	stateSpec.Configs["cleanup.policy"] = "compact"
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = kafka.EnsureTopics(tctx, adm, logger, cfg.Topics.Raw, stateSpec)
	cancel()
	if err != nil {
		return fmt.Errorf("ensuring topics: %w", err)
	}
	desc, err := kafka.DescribeTopic(ctx, adm, stateSpec.Name)
	if err != nil {
		return err
	}
	if desc.Partitions <= 0 {
		return fmt.Errorf("state topic %q has no known partitions yet; retry", stateSpec.Name)
	}
	if s.Admin != nil {
		s.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, adminCl) })
	}

	base, err := cfg.Kafka.Options(logger, nil, "poller")
	if err != nil {
		return err
	}
	codec, err := state.NewCodec()
	if err != nil {
		return err
	}
	defer codec.Close()
	baseFn := func() ([]kgo.Opt, error) { return cfg.Kafka.Options(logger, nil, "poller") }
	f := newFleet(cfg, sources, desc.Partitions, baseFn, s.Registry, logger, collect.NewMetrics(s.Registry), codec, s.Version)
	defer f.httpClient.CloseIdleConnections()
	if s.Admin != nil {
		s.Admin.AddCheck("sources", f.ready)
	}
	acfg := assign.Config{Group: cfg.Group, Topic: stateSpec.Name, InstanceID: cfg.InstanceID,
		SessionTimeout: cfg.SessionTimeout, RebalanceTimeout: cfg.RebalanceTimeout}
	if cfg.testing != nil && cfg.testing.heartbeat > 0 {
		acfg.HeartbeatInterval = cfg.testing.heartbeat
	}
	coord, err := assign.New(base, acfg, f, logger)
	if err != nil {
		return err
	}
	logger.Info("poller running", slog.Int("sources", len(sources)), slog.Int("state_partitions", int(desc.Partitions)),
		slog.String("group", cfg.Group), slog.String("instance_id", cfg.InstanceID))
	err = coord.Run(ctx)
	f.stopAll()
	if lerr := cfg.Membership.Leave(cfg.Kafka, cfg.Group); lerr != nil {
		logger.Warn("leaving the coordination group", slog.String("error", lerr.Error()))
	}
	return err
}
