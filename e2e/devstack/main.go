package devstack

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// Main is bin/devstack: it parses args, starts the stack, prints the banner
// and stops everything on SIGINT/SIGTERM. It returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	flags, err := parseMainFlags(args, stderr)
	if err != nil {
		return 2
	}
	attackKinds, err := parseAttacks(flags.attacks)
	if err != nil {
		fmt.Fprintln(stderr, "devstack:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With(slog.String("service", "devstack"))
	cfg := flags.config(stdout)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := Start(ctx, cfg, logger)
	if err != nil {
		logger.Error("starting the dev stack", slog.Any("error", err))
		return 1
	}
	simulate(ctx, st, attackKinds, flags.attackInterval, logger)
	// A service that crashes is restarted, as an orchestrator would.
	st.Supervise(DefaultSupervisePolicy())
	fmt.Fprint(stdout, st.Banner())
	<-ctx.Done()
	logger.Info("stopping the dev stack")
	st.Close()
	logger.Info("stopped")
	return 0
}

// mainFlags are bin/devstack's command-line flags.
type mainFlags struct {
	bin, configDir, dataDir                  string
	kafkaAddr, registryAddr, chAddr, simAddr string
	pollerAdmin, enricherAdmin, loaderAdmin  string
	seed                                     int64
	backlog                                  int
	span                                     time.Duration
	rate                                     float64
	attacks                                  string
	attackInterval                           time.Duration
}

// parseMainFlags parses args; usage and parse errors go to stderr.
func parseMainFlags(args []string, stderr io.Writer) (mainFlags, error) {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f mainFlags
	fs.StringVar(&f.bin, "bin", "bin", "directory holding the poller, enricher and loader binaries")
	fs.StringVar(&f.configDir, "config-dir", "deploy/config", "directory holding <service>.yaml")
	fs.StringVar(&f.dataDir, "data-dir", ".data", "data directory (Kafka, ClickHouse, GeoIP); kept across restarts")
	fs.StringVar(&f.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "Kafka (kfake) listen address")
	fs.StringVar(&f.registryAddr, "registry-addr", "127.0.0.1:8081", "Schema Registry (srfake) listen address")
	fs.StringVar(&f.chAddr, "clickhouse-addr", "127.0.0.1:8123", "ClickHouse HTTP listen address")
	fs.StringVar(&f.simAddr, "simulator-addr", "127.0.0.1:8787", "OpenAI simulator listen address")
	fs.StringVar(&f.pollerAdmin, "poller-admin", "127.0.0.1:9101", "poller admin address")
	fs.StringVar(&f.enricherAdmin, "enricher-admin", "127.0.0.1:9102", "enricher admin address")
	fs.StringVar(&f.loaderAdmin, "loader-admin", "127.0.0.1:9103", "loader admin address")
	fs.Int64Var(&f.seed, "seed", 1, "simulator seed")
	fs.IntVar(&f.backlog, "backlog", 2000, "simulated historical events")
	fs.DurationVar(&f.span, "backlog-span", 23*time.Hour, "how far back the simulated backlog reaches")
	fs.Float64Var(&f.rate, "rate", 120, "simulated live events per minute")
	fs.StringVar(&f.attacks, "attacks", openaisim.AttackAll, "simulated attack scenarios, comma-separated, all or none: "+strings.Join(openaisim.AttackKinds(), ", "))
	fs.DurationVar(&f.attackInterval, "attack-interval", 10*time.Minute, "repeat the simulated attacks at this interval (0: once, at start)")
	if err := fs.Parse(args); err != nil {
		return mainFlags{}, err
	}
	return f, nil
}

// config is the stack the flags describe, with the OpenAI key and base URL
// taken from OPENAI_ADMIN_KEY and OPENAI_BASE_URL; the banner goes to out.
func (f mainFlags) config(out io.Writer) Config {
	return Config{
		Infra: InfraConfig{
			DataDir:        f.dataDir,
			KafkaAddr:      f.kafkaAddr,
			RegistryAddr:   f.registryAddr,
			ClickHouseAddr: f.chAddr,
			SimulatorAddr:  f.simAddr,
			Simulator: openaisim.Config{
				Seed: f.seed, Backlog: f.backlog, BacklogSpan: f.span, RatePerMinute: f.rate,
				LateArrivalRate: 0.02, LateArrivalMaxAge: time.Hour, SameSecondBurst: 3,
			},
		},
		BinDir:        f.bin,
		ConfigDir:     f.configDir,
		AdminAddrs:    map[string]string{"poller": f.pollerAdmin, "enricher": f.enricherAdmin, "loader": f.loaderAdmin},
		OpenAIKey:     os.Getenv("OPENAI_ADMIN_KEY"),
		OpenAIBaseURL: os.Getenv("OPENAI_BASE_URL"),
		Out:           out,
	}
}

// simulate starts the simulator's live events and, in the background until
// ctx ends, the attack scenarios kinds every interval (once when 0). It
// does nothing when the stack runs without the simulator.
func simulate(ctx context.Context, st *Stack, kinds []string, interval time.Duration, logger *slog.Logger) {
	if st.Infra.Sim == nil {
		return
	}
	st.Infra.Sim.Start(ctx)
	go func() {
		if err := st.Infra.Sim.RunAttacks(ctx, kinds, interval); err != nil {
			logger.Error("simulating attacks", slog.Any("error", err))
		}
	}()
}

// parseAttacks reads -attacks: scenario names, all, or none.
func parseAttacks(list string) ([]string, error) {
	if list == "none" {
		return nil, nil
	}
	kinds, err := openaisim.ParseAttackKinds(list)
	if err != nil {
		return nil, fmt.Errorf("-attacks: %w", err)
	}
	return kinds, nil
}
