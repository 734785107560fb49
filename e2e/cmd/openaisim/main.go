// Command openaisim serves the OpenAI audit-log API simulator
// (pkg/dev/openaisim) for the dev stack, demos and load tests.
package main

import (
	"context"
	"errors"
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "openaisim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("openaisim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr        = fs.String("addr", "127.0.0.1:8787", "listen address")
		seed        = fs.Int64("seed", 1, "seed of the organization, events and probabilistic faults")
		backlog     = fs.Int("backlog", 1000, "historical events present at start")
		backlogSpan = fs.Duration("backlog-span", 7*24*time.Hour, "how far back the backlog reaches")
		rate        = fs.Float64("rate", 60, "live events per minute (0: none)")
		unknownRate = fs.Float64("unknown-rate", 0, "fraction of generated events with an unknown future type")
		lateRate    = fs.Float64("late-rate", 0, "fraction of live events that arrive late (older effective_at)")
		lateMaxAge  = fs.Duration("late-max-age", 6*time.Hour, "maximum age of a late arrival")
		burst       = fs.Int("burst", 1, "backlog events per effective_at second (same-second bursts)")
		adminKeys   = fs.String("admin-keys", "", "comma-separated extra accepted keys (any sk-admin-… key is accepted)")
		every429    = fs.Int("fault-429-every", 0, "answer every Nth audit-log request with 429")
		retryAfter  = fs.Duration("fault-429-retry-after", time.Second, "Retry-After of -fault-429-every (0: header omitted)")
		rate5xx     = fs.Float64("fault-5xx-rate", 0, "fraction of audit-log requests answered with 500/502/503")
		slowRate    = fs.Float64("fault-slow-rate", 0, "fraction of audit-log requests answered after -fault-slow-delay")
		slowDelay   = fs.Duration("fault-slow-delay", 2*time.Second, "delay of slow answers")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		attacks     = fs.String("attacks", "", "attack scenarios to generate at start (comma-separated, or all): "+strings.Join(openaisim.AttackKinds(), ", "))
		attackEvery = fs.Duration("attack-interval", 0, "generate the -attacks scenarios again at this interval (0: once)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	attackKinds, err := openaisim.ParseAttackKinds(*attacks)
	if err != nil {
		return fmt.Errorf("parsing -attacks: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("parsing -log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := openaisim.Config{
		Seed:              *seed,
		Backlog:           *backlog,
		BacklogSpan:       *backlogSpan,
		RatePerMinute:     *rate,
		UnknownTypeRate:   *unknownRate,
		LateArrivalRate:   *lateRate,
		LateArrivalMaxAge: *lateMaxAge,
		SameSecondBurst:   *burst,
	}
	for k := range strings.SplitSeq(*adminKeys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.AdminKeys = append(cfg.AdminKeys, k)
		}
	}
	sim, err := openaisim.New(cfg, logger)
	if err != nil {
		return err
	}
	defer sim.Close()

	var faults []openaisim.Fault
	if *every429 > 0 {
		faults = append(faults, openaisim.Fault{Kind: openaisim.FaultRateLimit, RetryAfter: *retryAfter, Count: -1, Match: openaisim.Match{Every: *every429}})
	}
	if *rate5xx > 0 {
		// Three equal shares of the rate, one per status: each fault only
		// sees requests the previous ones let through.
		p := *rate5xx / 3
		for i, status := range []int{500, 502, 503} {
			faults = append(faults, openaisim.Fault{Kind: openaisim.FaultServerError, Status: status, Count: -1, Match: openaisim.Match{Probability: min(p/(1-float64(i)*p), 1)}})
		}
	}
	if *slowRate > 0 {
		faults = append(faults, openaisim.Fault{Kind: openaisim.FaultSlow, Delay: *slowDelay, Count: -1, Match: openaisim.Match{Probability: *slowRate}})
	}
	for _, f := range faults {
		if err := sim.ScheduleFault(f); err != nil {
			return err
		}
	}

	ln, err := sim.Listen(*addr)
	if err != nil {
		return err
	}
	logger.Info("serving OpenAI audit-log simulator",
		slog.String("url", sim.URL()+"/v1"),
		slog.Int("backlog", *backlog),
		slog.Float64("rate_per_minute", *rate),
		slog.Int("faults", len(faults)))
	sim.Start(ctx)
	attackErr := make(chan error, 1)
	go func() { attackErr <- sim.RunAttacks(ctx, attackKinds, *attackEvery) }()
	if err := sim.Serve(ctx, ln); err != nil {
		return err
	}
	if err := <-attackErr; err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
