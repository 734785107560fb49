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
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin", "directory holding the poller, enricher and loader binaries")
	configDir := fs.String("config-dir", "deploy/config", "directory holding <service>.yaml")
	dataDir := fs.String("data-dir", ".data", "data directory (Kafka, ClickHouse, GeoIP); kept across restarts")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "Kafka (kfake) listen address")
	registryAddr := fs.String("registry-addr", "127.0.0.1:8081", "Schema Registry (srfake) listen address")
	chAddr := fs.String("clickhouse-addr", "127.0.0.1:8123", "ClickHouse HTTP listen address")
	simAddr := fs.String("simulator-addr", "127.0.0.1:8787", "OpenAI simulator listen address")
	pollerAdmin := fs.String("poller-admin", "127.0.0.1:9101", "poller admin address")
	enricherAdmin := fs.String("enricher-admin", "127.0.0.1:9102", "enricher admin address")
	loaderAdmin := fs.String("loader-admin", "127.0.0.1:9103", "loader admin address")
	seed := fs.Int64("seed", 1, "simulator seed")
	backlog := fs.Int("backlog", 2000, "simulated historical events")
	span := fs.Duration("backlog-span", 23*time.Hour, "how far back the simulated backlog reaches")
	rate := fs.Float64("rate", 120, "simulated live events per minute")
	attacks := fs.String("attacks", openaisim.AttackAll, "simulated attack scenarios, comma-separated, all or none: "+strings.Join(openaisim.AttackKinds(), ", "))
	attackInterval := fs.Duration("attack-interval", 10*time.Minute, "repeat the simulated attacks at this interval (0: once, at start)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	attackKinds, err := parseAttacks(*attacks)
	if err != nil {
		fmt.Fprintln(stderr, "devstack:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With(slog.String("service", "devstack"))
	cfg := Config{
		Infra: InfraConfig{
			DataDir:        *dataDir,
			KafkaAddr:      *kafkaAddr,
			RegistryAddr:   *registryAddr,
			ClickHouseAddr: *chAddr,
			SimulatorAddr:  *simAddr,
			Simulator: openaisim.Config{
				Seed: *seed, Backlog: *backlog, BacklogSpan: *span, RatePerMinute: *rate,
				LateArrivalRate: 0.02, LateArrivalMaxAge: time.Hour, SameSecondBurst: 3,
			},
		},
		BinDir:        *bin,
		ConfigDir:     *configDir,
		AdminAddrs:    map[string]string{"poller": *pollerAdmin, "enricher": *enricherAdmin, "loader": *loaderAdmin},
		OpenAIKey:     os.Getenv("OPENAI_ADMIN_KEY"),
		OpenAIBaseURL: os.Getenv("OPENAI_BASE_URL"),
		Out:           stdout,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := Start(ctx, cfg, logger)
	if err != nil {
		logger.Error("starting the dev stack", slog.Any("error", err))
		return 1
	}
	if st.Infra.Sim != nil {
		st.Infra.Sim.Start(ctx)
		go func() {
			if err := st.Infra.Sim.RunAttacks(ctx, attackKinds, *attackInterval); err != nil {
				logger.Error("simulating attacks", slog.Any("error", err))
			}
		}()
	}
	// A service that crashes is restarted, as an orchestrator would.
	st.Supervise(DefaultSupervisePolicy())
	fmt.Fprint(stdout, st.Banner())
	<-ctx.Done()
	logger.Info("stopping the dev stack")
	st.Close()
	logger.Info("stopped")
	return 0
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
