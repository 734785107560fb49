package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/telemetry"
)

// Version is the build's version, set with
// -ldflags "-X github.com/auditpipe/auditpipe/pkg/service.Version=v1.2.3".
var Version = "dev"

// Runtime is the part of every service's configuration that Main itself uses.
type Runtime struct {
	Log   telemetry.LogConfig   `koanf:"log"`
	Admin telemetry.AdminConfig `koanf:"admin"`
	// ShutdownTimeout bounds the graceful shutdown: after the first signal the
	// service has this long to finish in-flight work before Main gives up and
	// exits non-zero.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// Memory is the process's memory budget.
	Memory MemoryConfig `koanf:"memory"`
}

// MemoryConfig is the memory budget of a service process.
type MemoryConfig struct {
	// Limit is the memory the process may use, e.g. 256MiB: the limit of
	// the container it runs in. Main sets Go's soft memory limit
	// (runtime/debug.SetMemoryLimit) to SoftLimit, unless GOMEMLIMIT is
	// set, and each service sizes its buffers from it. 0: no budget (the
	// runtime's and the libraries' defaults).
	Limit config.ByteSize `koanf:"limit"`
}

// MinMemoryLimit is the smallest budget a service accepts: below it the
// runtime, the libraries and the connections alone would not fit.
const MinMemoryLimit = 48 * config.MiB

// NonGoHeadroom is the least of memory.limit kept out of Go's soft limit,
// for the resident memory the Go runtime does not manage: the binary's
// code and memory-mapped files (GeoIP databases).
const NonGoHeadroom = 32 * config.MiB

// SoftLimit is what Go's soft memory limit is set to: memory.limit less a
// sixth of it, and at least NonGoHeadroom. Under load the collector lets
// the heap grow up to the soft limit before it runs, so the process's
// resident size is about the soft limit plus what the runtime does not
// manage (20-30 MiB measured for the services' code): the headroom keeps
// that sum within memory.limit. The services size their buffers within
// the soft limit.
func (m MemoryConfig) SoftLimit() int64 {
	return (m.Limit - m.Headroom()).Bytes()
}

// Headroom is the part of Limit kept out of Go's soft limit (see
// SoftLimit): a sixth of it, and at least NonGoHeadroom.
func (m MemoryConfig) Headroom() config.ByteSize {
	return max(m.Limit/6, NonGoHeadroom)
}

// Validate checks the budget's range.
func (m MemoryConfig) Validate() error {
	if m.Limit != 0 && m.Limit < MinMemoryLimit {
		return fmt.Errorf("limit: %s is below the minimum of %s (0: no budget)", m.Limit, MinMemoryLimit)
	}
	return nil
}

// RuntimeConfig implements Config: a service's configuration embeds
// Runtime with `koanf:",squash"` (log, admin, shutdown_timeout and memory
// stay top-level keys) and so is a Config.
func (r Runtime) RuntimeConfig() Runtime { return r }

// DefaultRuntime logs JSON at info and serves the admin endpoints on addr.
func DefaultRuntime(addr string) Runtime {
	return Runtime{
		Log:             telemetry.DefaultLogConfig(),
		Admin:           telemetry.AdminConfig{Addr: addr, CheckTimeout: 2 * time.Second},
		ShutdownTimeout: 30 * time.Second,
	}
}

// Validate checks the shutdown timeout; the nested configs check themselves.
func (r Runtime) Validate() error {
	if r.ShutdownTimeout <= 0 {
		return errors.New("shutdown_timeout: must be positive")
	}
	return nil
}

// Config is what a service's configuration struct provides to Main.
type Config interface {
	// RuntimeConfig returns the logging, admin and shutdown settings.
	RuntimeConfig() Runtime
}

// Settings are what Main hands a service's Run: shared facilities, never
// globals.
type Settings struct {
	Logger *slog.Logger
	// Metrics is the Prometheus registry that /metrics serves: register
	// the service's collectors with it.
	Metrics *prometheus.Registry
	// Admin serves /metrics, /healthz and /readyz; add readiness checks to it.
	Admin   *telemetry.Admin
	Version string
	// ShutdownTimeout is how long Run may take to drain after ctx is done.
	ShutdownTimeout time.Duration
}

// Spec describes one service binary.
type Spec[C Config] struct {
	// Name is the binary's name, e.g. "poller".
	Name string
	// EnvPrefix selects the environment variables, e.g. "AUDITPIPE_POLLER_".
	EnvPrefix string
	// Defaults returns the configuration before any file or variable is read.
	Defaults func() C
	// EnvExamples are lines of --help showing real keys set from the
	// environment, without the prefix, e.g.
	// "SOURCES__0__ADMIN_KEY=sk-admin-… sets sources[0].admin_key".
	EnvExamples []string
	// Run runs the service until ctx is done, then drains within
	// Settings.ShutdownTimeout and returns. A nil return after ctx is done
	// is a clean stop.
	Run func(ctx context.Context, cfg C, s Settings) error
}

// Main runs spec with the command-line arguments args (without the program
// name) and returns the process exit code. It blocks until the service stops.
func Main[C Config](spec Spec[C], args []string) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return run(spec, args, os.Stdout, os.Stderr, os.Environ, sigs)
}

// run is Main with its environment passed in: it parses args, loads the
// configuration, starts the logger and the admin server, then supervises
// spec.Run until it stops. It returns the process exit code.
func run[C Config](spec Spec[C], args []string, stdout, stderr io.Writer, environ func() []string, sigs <-chan os.Signal) int {
	f, code, exit := parseArgs(spec, args, stdout, stderr)
	if exit {
		return code
	}
	cfg, rendered, warnings, ok := loadConfig(spec, f.file, environ, stderr)
	if !ok {
		return 1
	}
	if f.check {
		for _, w := range warnings {
			fmt.Fprintf(stderr, "%s: warning: %s\n", spec.Name, w.Message)
		}
		fmt.Fprintf(stdout, "# %s: configuration OK (secrets redacted)\n%s", spec.Name, rendered)
		return 0
	}

	rt := cfg.RuntimeConfig()
	logger, err := startLogger(spec.Name, rt, f.file, rendered, environ, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 1
	}
	for _, w := range warnings {
		logger.Warn("secret file readable by others", slog.String("key", w.Key), slog.String("file", w.File),
			slog.String("mode", w.Mode.String()), slog.String("fix", w.Message))
	}
	reg := prometheus.NewRegistry()
	admin := telemetry.NewAdmin(rt.Admin, reg, logger)
	if err := admin.Listen(); err != nil {
		logger.Error("starting", slog.Any("error", err))
		return 1
	}
	set := Settings{Logger: logger, Metrics: reg, Admin: admin, Version: Version, ShutdownTimeout: rt.ShutdownTimeout}
	return supervise(spec, cfg, set, sigs)
}

// cmdline holds the command-line flags.
type cmdline struct {
	file  string // --config
	check bool   // --check-config
}

// parseArgs parses the command line. When the process should stop at
// once (--help, a usage error, --version) it reports exit with the exit
// code, having written what the user asked for or the error.
func parseArgs[C Config](spec Spec[C], args []string, stdout, stderr io.Writer) (f cmdline, code int, exit bool) {
	fs := flag.NewFlagSet(spec.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration `file` (environment variables "+spec.EnvPrefix+"* override it)")
	check := fs.Bool("check-config", false, "validate the configuration, print it with secrets redacted, and exit")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [--config file] [--check-config] [--version]\n\n", spec.Name)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nEvery configuration key can be set from the environment (\"__\" separates levels, list\nelements go by index, lists of scalars are comma-separated):\n  %sKAFKA__BROKERS=a:9092,b:9092 sets kafka.brokers\n", spec.EnvPrefix)
		for _, ex := range spec.EnvExamples {
			fmt.Fprintf(stderr, "  %s%s\n", spec.EnvPrefix, ex)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cmdline{}, 0, true
		}
		return cmdline{}, 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments: %s\n", spec.Name, strings.Join(fs.Args(), " "))
		return cmdline{}, 2, true
	}
	if *version {
		fmt.Fprintf(stdout, "%s %s\n", spec.Name, Version)
		return cmdline{}, 0, true
	}
	return cmdline{file: *file, check: *check}, 0, false
}

// loadConfig loads the configuration from file and the environment and
// renders it with secrets redacted; it returns the load's warnings (secret
// files others may read) for the caller to report. On failure it writes
// the problem to stderr and reports false.
func loadConfig[C Config](spec Spec[C], file string, environ func() []string, stderr io.Writer) (cfg C, rendered string, warnings []config.Warning, ok bool) {
	cfg = spec.Defaults()
	warn := func(w config.Warning) { warnings = append(warnings, w) }
	if err := config.Load(&cfg, config.Options{File: file, EnvPrefix: spec.EnvPrefix, Environ: environ, Warn: warn}); err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%s\n", spec.Name, indent(err.Error()))
		return cfg, "", nil, false
	}
	rendered, err := config.Redact(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return cfg, "", nil, false
	}
	return cfg, rendered, warnings, true
}

// startLogger creates the service's logger on stderr, logs the start and
// the effective configuration (rendered, secrets redacted), and applies
// the memory budget.
func startLogger(name string, rt Runtime, file, rendered string, environ func() []string, stderr io.Writer) (*slog.Logger, error) {
	logger, err := telemetry.NewLogger(rt.Log, stderr)
	if err != nil {
		return nil, err
	}
	logger = logger.With(slog.String("service", name))
	logger.Info("starting", slog.String("version", Version), slog.String("config_file", file))
	logger.Info("effective configuration (secrets redacted)", slog.String("config", rendered))
	applyMemoryLimit(rt.Memory, environ, logger)
	return logger, nil
}

// supervise runs the admin server (already listening) and spec.Run until
// the service returns, the admin server fails or a signal comes; then it
// cancels the service, waits for it to drain within set.ShutdownTimeout
// (or until a second signal) and returns the exit code.
func supervise[C Config](spec Spec[C], cfg C, set Settings, sigs <-chan os.Signal) int {
	logger := set.Logger
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	go func() { adminDone <- set.Admin.Run(adminCtx) }()
	done := make(chan error, 1)
	go func() { done <- spec.Run(ctx, cfg, set) }()

	code := 0
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("stopped with an error", slog.Any("error", err))
			code = 1
		}
	case err := <-adminDone:
		logger.Error("admin server stopped", slog.Any("error", err))
		cancel()
		code = 1
		if !waitDrain(done, sigs, set.ShutdownTimeout, logger) {
			return 1
		}
	case sig := <-sigs:
		logger.Info("signal received: finishing in-flight work", slog.String("signal", sig.String()), slog.String("deadline", set.ShutdownTimeout.String()))
		cancel()
		if !waitDrain(done, sigs, set.ShutdownTimeout, logger) {
			code = 1
		}
	}
	stopAdmin()
	logger.Info("stopped", slog.Int("exit_code", code))
	return code
}

// waitDrain waits for the service to return after its context was
// cancelled. It reports false when the deadline passed or a second signal
// came first, or when the service returned an error.
func waitDrain(done <-chan error, sigs <-chan os.Signal, timeout time.Duration, logger *slog.Logger) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("stopped with an error", slog.Any("error", err))
			return false
		}
		return true
	case <-t.C:
		logger.Error("shutdown deadline exceeded: aborting with work in flight", slog.String("deadline", timeout.String()))
	case sig := <-sigs:
		logger.Error("second signal: aborting with work in flight", slog.String("signal", sig.String()))
	}
	return false
}

// applyMemoryLimit sets Go's soft memory limit from the budget, unless
// GOMEMLIMIT (which the runtime applied already) says otherwise.
func applyMemoryLimit(m MemoryConfig, environ func() []string, logger *slog.Logger) {
	if m.Limit == 0 {
		return
	}
	for _, kv := range environ() {
		if v, ok := strings.CutPrefix(kv, "GOMEMLIMIT="); ok && v != "" {
			logger.Info("memory budget: GOMEMLIMIT is set and takes precedence for the Go runtime", slog.String("memory_limit", m.Limit.String()), slog.String("GOMEMLIMIT", v))
			return
		}
	}
	debug.SetMemoryLimit(m.SoftLimit())
	logger.Info("memory budget", slog.String("memory_limit", m.Limit.String()), slog.String("go_soft_limit", config.ByteSize(m.SoftLimit()).String()))
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
