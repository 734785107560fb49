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

// options are the command-line flags.
type options struct {
	addr        string
	seed        int64
	backlog     int
	backlogSpan time.Duration
	rate        float64
	unknownRate float64
	lateRate    float64
	dropRate    float64
	lateMaxAge  time.Duration
	burst       int
	adminKeys   string
	every429    int
	retryAfter  time.Duration
	rate5xx     float64
	slowRate    float64
	slowDelay   time.Duration
	logLevel    string
	attacks     string
	attackEvery time.Duration
}

// run serves the simulator configured by args until ctx ends, logging to
// stderr. It returns flag.ErrHelp for -h.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	attackKinds, err := openaisim.ParseAttackKinds(opts.attacks)
	if err != nil {
		return fmt.Errorf("parsing -attacks: %w", err)
	}
	logger, err := newLogger(opts.logLevel, stderr)
	if err != nil {
		return err
	}
	sim, err := openaisim.New(opts.simConfig(), logger)
	if err != nil {
		return err
	}
	defer sim.Close()
	faults := opts.faults()
	for _, f := range faults {
		if err := sim.ScheduleFault(f); err != nil {
			return err
		}
	}
	return serve(ctx, sim, opts, attackKinds, len(faults), logger)
}

// parseFlags parses args; usage and parse errors go to stderr.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("openaisim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8787", "listen address")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the organization, events and probabilistic faults")
	fs.IntVar(&o.backlog, "backlog", 1000, "historical events present at start")
	fs.DurationVar(&o.backlogSpan, "backlog-span", 7*24*time.Hour, "how far back the backlog reaches")
	fs.Float64Var(&o.rate, "rate", 60, "live events per minute (0: none)")
	fs.Float64Var(&o.unknownRate, "unknown-rate", 0, "fraction of generated events with an unknown future type")
	fs.Float64Var(&o.lateRate, "late-rate", 0, "fraction of live events that arrive late (older effective_at)")
	fs.Float64Var(&o.dropRate, "drop-rate", 0, "fraction of live events that change the inventory which are dropped (never served)")
	fs.DurationVar(&o.lateMaxAge, "late-max-age", 6*time.Hour, "maximum age of a late arrival")
	fs.IntVar(&o.burst, "burst", 1, "backlog events per effective_at second (same-second bursts)")
	fs.StringVar(&o.adminKeys, "admin-keys", "", "comma-separated extra accepted keys (any sk-admin-… key is accepted)")
	fs.IntVar(&o.every429, "fault-429-every", 0, "answer every Nth audit-log request with 429")
	fs.DurationVar(&o.retryAfter, "fault-429-retry-after", time.Second, "Retry-After of -fault-429-every (0: header omitted)")
	fs.Float64Var(&o.rate5xx, "fault-5xx-rate", 0, "fraction of audit-log requests answered with 500/502/503")
	fs.Float64Var(&o.slowRate, "fault-slow-rate", 0, "fraction of audit-log requests answered after -fault-slow-delay")
	fs.DurationVar(&o.slowDelay, "fault-slow-delay", 2*time.Second, "delay of slow answers")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.attacks, "attacks", "", "attack scenarios to generate at start (comma-separated, or all): "+strings.Join(openaisim.AttackKinds(), ", "))
	fs.DurationVar(&o.attackEvery, "attack-interval", 0, "generate the -attacks scenarios again at this interval (0: once)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	return o, nil
}

// newLogger returns a text logger on w at the -log-level level.
func newLogger(logLevel string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("parsing -log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// simConfig is the simulator configuration the flags describe.
func (o options) simConfig() openaisim.Config {
	cfg := openaisim.Config{
		Seed:              o.seed,
		Backlog:           o.backlog,
		BacklogSpan:       o.backlogSpan,
		RatePerMinute:     o.rate,
		UnknownTypeRate:   o.unknownRate,
		LateArrivalRate:   o.lateRate,
		DropRate:          o.dropRate,
		LateArrivalMaxAge: o.lateMaxAge,
		SameSecondBurst:   o.burst,
	}
	for k := range strings.SplitSeq(o.adminKeys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.AdminKeys = append(cfg.AdminKeys, k)
		}
	}
	return cfg
}

// faults are the standing faults the -fault-* flags ask for, in scheduling
// order: 429s, then 5xx, then slow answers.
func (o options) faults() []openaisim.Fault {
	var faults []openaisim.Fault
	if o.every429 > 0 {
		faults = append(faults, openaisim.Fault{Kind: openaisim.FaultRateLimit, RetryAfter: o.retryAfter, Count: -1, Match: openaisim.Match{Every: o.every429}})
	}
	if o.rate5xx > 0 {
		// Three equal shares of the rate, one per status: each fault only
		// sees requests the previous ones let through.
		p := o.rate5xx / 3
		for i, status := range []int{500, 502, 503} {
			faults = append(faults, openaisim.Fault{Kind: openaisim.FaultServerError, Status: status, Count: -1, Match: openaisim.Match{Probability: min(p/(1-float64(i)*p), 1)}})
		}
	}
	if o.slowRate > 0 {
		faults = append(faults, openaisim.Fault{Kind: openaisim.FaultSlow, Delay: o.slowDelay, Count: -1, Match: openaisim.Match{Probability: o.slowRate}})
	}
	return faults
}

// serve listens on -addr, starts the live events and the attack scenarios,
// and serves until ctx ends; it then waits for the attack scenarios to stop.
func serve(ctx context.Context, sim *openaisim.Simulator, o options, attackKinds []string, faults int, logger *slog.Logger) error {
	ln, err := sim.Listen(o.addr)
	if err != nil {
		return err
	}
	logger.Info("serving OpenAI audit-log simulator",
		slog.String("url", sim.URL()+"/v1"),
		slog.Int("backlog", o.backlog),
		slog.Float64("rate_per_minute", o.rate),
		slog.Int("faults", faults))
	sim.Start(ctx)
	attackErr := make(chan error, 1)
	go func() { attackErr <- sim.RunAttacks(ctx, attackKinds, o.attackEvery) }()
	if err := sim.Serve(ctx, ln); err != nil {
		return err
	}
	if err := <-attackErr; err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
