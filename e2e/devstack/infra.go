package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

// InfraConfig says what to start and where. Addresses with port 0 get a free
// port.
type InfraConfig struct {
	// DataDir holds Kafka's and ClickHouse's data and the GeoIP databases;
	// it survives restarts.
	DataDir string
	// KafkaAddr is where kfake listens. Ignored when ExternalKafka is set.
	KafkaAddr string
	// ExternalKafka, when set, is used instead of starting kfake.
	ExternalKafka []string
	// RegistryAddr is where the Schema Registry (srfake behind
	// kafkatest.EnforceCompatibility) listens.
	RegistryAddr string
	// ClickHouseAddr is where the embedded ClickHouse listens. Ignored when
	// ExternalClickHouse is set.
	ClickHouseAddr string
	// ExternalClickHouse, when set (http://host:port), is used instead of
	// starting the embedded engine (tests share one engine per process).
	ExternalClickHouse string
	// SimulatorAddr is where the OpenAI simulator listens; empty starts none
	// (a real OpenAI API is used instead).
	SimulatorAddr string
	// Simulator configures the simulated organization.
	Simulator openaisim.Config
	// KafkaPartitions is kfake's default partition count for new topics.
	KafkaPartitions int
}

// Infra is the running infrastructure. Close stops it.
type Infra struct {
	KafkaBrokers []string
	RegistryURL  string
	ClickHouse   string // http://host:port
	SimulatorURL string // base URL of the API, ending in /v1; "" without simulator
	Sim          *openaisim.Simulator
	GeoIP        GeoIPPaths

	kfake     *kfake.Cluster
	kfakeOpts []kfake.Opt
	registry  *http.Server
	ch        *chserver.Server
	chStop    context.CancelFunc
	chDone    chan error
	simStop   context.CancelFunc
	simDone   chan error
	log       *slog.Logger
}

// StartInfra starts everything in cfg, reporting progress to logger. On an
// error it stops what it had started.
func StartInfra(ctx context.Context, cfg InfraConfig, logger *slog.Logger) (_ *Infra, err error) {
	inf := &Infra{log: logger}
	defer func() {
		if err != nil {
			inf.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	if err := inf.startKafka(cfg); err != nil {
		return nil, err
	}
	if err := inf.startRegistry(cfg); err != nil {
		return nil, err
	}
	if err := inf.startClickHouse(ctx, cfg); err != nil {
		return nil, err
	}
	if err := inf.startSimulator(cfg); err != nil {
		return nil, err
	}
	inf.GeoIP, err = writeGeoIP(filepath.Join(cfg.DataDir, "geoip"))
	if err != nil {
		return nil, err
	}
	logger.Info("synthetic GeoIP databases written", slog.String("dir", filepath.Join(cfg.DataDir, "geoip")))
	return inf, ctx.Err()
}

// startKafka starts kfake on cfg.KafkaAddr with its data under
// cfg.DataDir, or uses cfg.ExternalKafka when set.
func (inf *Infra) startKafka(cfg InfraConfig) error {
	if len(cfg.ExternalKafka) > 0 {
		inf.KafkaBrokers = cfg.ExternalKafka
		return nil
	}
	parts := cfg.KafkaPartitions
	if parts <= 0 {
		parts = 4
	}
	host, port, err := splitAddr(cfg.KafkaAddr)
	if err != nil {
		return fmt.Errorf("kafka address: %w", err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, fmt.Sprint(port)))
		}),
		kfake.DataDir(filepath.Join(cfg.DataDir, "kafka")),
		kfake.DefaultNumPartitions(parts),
		kfake.AllowAutoTopicCreation(),
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("starting Kafka (kfake) on %s: %w", cfg.KafkaAddr, err)
	}
	inf.kfake, inf.kfakeOpts = c, opts
	inf.KafkaBrokers = c.ListenAddrs()
	inf.log.Info("Kafka (kfake) ready", slog.Any("brokers", inf.KafkaBrokers), slog.String("data", filepath.Join(cfg.DataDir, "kafka")))
	return nil
}

// startRegistry serves the Schema Registry on cfg.RegistryAddr in the
// background until Close.
func (inf *Infra) startRegistry(cfg InfraConfig) error {
	ln, err := net.Listen("tcp", cfg.RegistryAddr)
	if err != nil {
		return fmt.Errorf("starting the Schema Registry (srfake) on %s: %w", cfg.RegistryAddr, err)
	}
	// srfake accepts every schema; in front of it the registry checks
	// compatibility as Confluent's does.
	inf.registry = &http.Server{Handler: kafkatest.EnforceCompatibility(srfake.NewRegistry()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = inf.registry.Serve(ln) }()
	inf.RegistryURL = "http://" + ln.Addr().String()
	inf.log.Info("Schema Registry (srfake, compatibility enforced) ready", slog.String("url", inf.RegistryURL))
	return nil
}

// startClickHouse runs the embedded ClickHouse on cfg.ClickHouseAddr in the
// background until Close, fetching the web pages' scripts first (blocking,
// bounded by ctx), or uses cfg.ExternalClickHouse when set.
func (inf *Infra) startClickHouse(ctx context.Context, cfg InfraConfig) error {
	if cfg.ExternalClickHouse != "" {
		inf.ClickHouse = cfg.ExternalClickHouse
		return nil
	}
	assets, err := webui.EnsureAssets(ctx, infraProgress{inf.log})
	if err != nil {
		return fmt.Errorf("fetching the scripts of ClickHouse's web pages: %w", err)
	}
	ch, err := chserver.New(chserver.Config{Addr: cfg.ClickHouseAddr, DataDir: filepath.Join(cfg.DataDir, "clickhouse"), WebAssetsDir: assets}, inf.log.With(slog.String("component", "chserver")))
	if err != nil {
		return fmt.Errorf("starting the embedded ClickHouse on %s: %w", cfg.ClickHouseAddr, err)
	}
	inf.ch = ch
	chCtx, chStop := context.WithCancel(context.Background())
	inf.chStop, inf.chDone = chStop, make(chan error, 1)
	go func() { inf.chDone <- ch.Run(chCtx) }()
	inf.ClickHouse = ch.URL()
	inf.log.Info("ClickHouse (embedded engine) ready", slog.String("url", inf.ClickHouse))
	return nil
}

// startSimulator serves the OpenAI simulator on cfg.SimulatorAddr in the
// background until Close; it starts none when cfg.SimulatorAddr is empty.
// Starting its live events is left to the caller (Simulator.Start).
func (inf *Infra) startSimulator(cfg InfraConfig) error {
	if cfg.SimulatorAddr == "" {
		return nil
	}
	sim, err := openaisim.New(cfg.Simulator, inf.log.With(slog.String("component", "openaisim")))
	if err != nil {
		return fmt.Errorf("starting the OpenAI simulator: %w", err)
	}
	sln, err := net.Listen("tcp", cfg.SimulatorAddr)
	if err != nil {
		sim.Close()
		return fmt.Errorf("starting the OpenAI simulator on %s: %w", cfg.SimulatorAddr, err)
	}
	sctx, stop := context.WithCancel(context.Background())
	inf.Sim, inf.simStop, inf.simDone = sim, stop, make(chan error, 1)
	go func() { inf.simDone <- sim.Serve(sctx, sln) }()
	inf.SimulatorURL = "http://" + sln.Addr().String() + "/v1"
	inf.log.Info("OpenAI simulator ready", slog.String("url", inf.SimulatorURL), slog.Int("backlog", cfg.Simulator.Backlog), slog.Any("events_per_minute", cfg.Simulator.RatePerMinute))
	return nil
}

// RestartKafka stops the embedded broker and starts it again on the same
// address and data directory, as a broker restart does: clients see their
// connections drop and reconnect. It is not safe to call concurrently with
// itself or Close, and fails when the stack uses an external broker.
func (inf *Infra) RestartKafka() error {
	if inf.kfake == nil {
		return errors.New("restarting Kafka: the stack uses an external broker")
	}
	inf.kfake.Close()
	inf.kfake = nil
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		var c *kfake.Cluster
		if c, err = kfake.NewCluster(inf.kfakeOpts...); err == nil {
			inf.kfake = c
			return nil
		}
		time.Sleep(100 * time.Millisecond) // the port is released asynchronously
	}
	return fmt.Errorf("restarting Kafka (kfake): %w", err)
}

// Close stops everything that was started, newest first.
func (inf *Infra) Close() {
	if inf.simStop != nil {
		inf.simStop()
		<-inf.simDone
		inf.Sim.Close()
	}
	if inf.ch != nil {
		inf.chStop()
		if err := <-inf.chDone; err != nil {
			inf.log.Warn("stopping ClickHouse", slog.Any("error", err))
		}
	}
	if inf.registry != nil {
		_ = inf.registry.Close()
	}
	if inf.kfake != nil {
		inf.kfake.Close()
	}
}

func splitAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
		return "", 0, errors.New("port is not a number")
	}
	return host, p, nil
}

// infraProgress logs download progress lines.
type infraProgress struct{ log *slog.Logger }

func (p infraProgress) Write(b []byte) (int, error) {
	p.log.Info(strings.TrimSpace(string(b)))
	return len(b), nil
}
