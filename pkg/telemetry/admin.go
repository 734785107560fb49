package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminConfig configures the admin HTTP server.
type AdminConfig struct {
	// Addr is the listen address, e.g. 127.0.0.1:9101; empty disables the server.
	Addr string `koanf:"addr"`
	// Pprof serves /debug/pprof when true.
	Pprof bool `koanf:"pprof"`
	// CheckTimeout bounds each readiness check.
	CheckTimeout time.Duration `koanf:"check_timeout"`
}

// Validate checks the address and timeout.
func (c AdminConfig) Validate() error {
	var errs []error
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("addr: %q is not host:port: %w", c.Addr, err))
		}
	}
	if c.CheckTimeout <= 0 {
		errs = append(errs, errors.New("check_timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Check reports whether one dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// DefaultReadyInterval is how often Run evaluates the readiness checks to
// keep the auditpipe_ready gauge current between /readyz requests.
const DefaultReadyInterval = 10 * time.Second

// Admin is the admin HTTP server. Its methods are safe for concurrent use.
type Admin struct {
	cfg           AdminConfig
	logger        *slog.Logger
	reg           *prometheus.Registry
	mux           *http.ServeMux
	ready         prometheus.Gauge
	readyInterval time.Duration

	mu     sync.Mutex
	checks map[string]Check
	ln     net.Listener
}

// AdminOption adjusts an Admin; options are for tests, never configuration.
type AdminOption func(*Admin)

// WithReadyInterval sets how often Run evaluates the readiness checks
// (DefaultReadyInterval otherwise).
func WithReadyInterval(d time.Duration) AdminOption {
	return func(a *Admin) { a.readyInterval = d }
}

// NewAdmin builds the server around reg, to which it adds the Go runtime and
// process collectors and the auditpipe_ready gauge: 1 while every readiness
// check passes, else 0 (0 until the first evaluation), set by each /readyz
// request and every ready interval while Run runs. It does not listen until Run. logger may be nil.
func NewAdmin(cfg AdminConfig, reg *prometheus.Registry, logger *slog.Logger, opts ...AdminOption) *Admin {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Admin{cfg: cfg, logger: logger, reg: reg, mux: http.NewServeMux(), checks: map[string]Check{}, readyInterval: DefaultReadyInterval}
	for _, o := range opts {
		o(a)
	}
	// Registering twice (two Admins on one registry in tests) is harmless.
	_ = reg.Register(collectors.NewGoCollector())
	_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.ready = registerGauge(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "auditpipe", Name: "ready",
		Help: "1 while every readiness check of the service passes (what /readyz answers 200 for), else 0.",
	}))
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.mux.HandleFunc("GET /readyz", a.serveReady)
	if cfg.Pprof {
		a.mux.HandleFunc("/debug/pprof/", pprof.Index)
		a.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		a.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return a
}

// registerGauge registers g on reg, or returns the gauge already registered
// under its name (two Admins on one registry in tests).
func registerGauge(reg *prometheus.Registry, g prometheus.Gauge) prometheus.Gauge {
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(prometheus.Gauge); ok {
				return existing
			}
		}
	}
	return g
}

// AddCheck registers (or replaces) the readiness check called name. /readyz
// answers 200 only while every check returns nil.
func (a *Admin) AddCheck(name string, c Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks[name] = c
}

// Handle adds a handler to the admin mux (e.g. a service's debug page).
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// Ready runs every check, each bounded by the check timeout, sets the
// auditpipe_ready gauge and returns the failures by name. It blocks until
// every check has returned.
func (a *Admin) Ready(ctx context.Context) map[string]error {
	failed := a.runChecks(ctx)
	if len(failed) == 0 {
		a.ready.Set(1)
	} else {
		a.ready.Set(0)
	}
	return failed
}

func (a *Admin) runChecks(ctx context.Context) map[string]error {
	a.mu.Lock()
	checks := make(map[string]Check, len(a.checks))
	for k, v := range a.checks {
		checks[k] = v
	}
	a.mu.Unlock()
	failed := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, a.cfg.CheckTimeout)
			defer cancel()
			if err := c(cctx); err != nil {
				mu.Lock()
				failed[name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

func (a *Admin) serveReady(w http.ResponseWriter, r *http.Request) {
	failed := a.Ready(r.Context())
	a.mu.Lock()
	names := make([]string, 0, len(a.checks))
	for k := range a.checks {
		names = append(names, k)
	}
	a.mu.Unlock()
	sort.Strings(names)
	body := map[string]string{}
	for _, n := range names {
		if err, ok := failed[n]; ok {
			body[n] = err.Error()
		} else {
			body[n] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Listen binds the configured address; Run calls it when it was not called
// before. Addr is valid after it returns.
func (a *Admin) Listen() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln != nil || a.cfg.Addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening for the admin server on %s: %w", a.cfg.Addr, err)
	}
	a.ln = ln
	return nil
}

// Addr returns the address the server listens on, or "" before Listen.
func (a *Admin) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Run serves until ctx is done, then shuts down within five seconds. While
// it runs it evaluates the readiness checks every ready interval to keep
// the auditpipe_ready gauge current. With an empty address it only waits
// for ctx.
func (a *Admin) Run(ctx context.Context) error {
	if err := a.Listen(); err != nil {
		return err
	}
	a.mu.Lock()
	ln := a.ln
	a.mu.Unlock()
	if ln == nil {
		<-ctx.Done()
		return nil
	}
	loopDone := make(chan struct{})
	loopCtx, stopLoop := context.WithCancel(ctx)
	go func() {
		defer close(loopDone)
		a.evaluateReadiness(loopCtx)
	}()
	defer func() { stopLoop(); <-loopDone }()
	srv := &http.Server{Handler: a.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.logger.Info("admin server listening", slog.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("serving admin endpoints: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down the admin server: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving admin endpoints: %w", err)
	}
	return nil
}

// evaluateReadiness runs the checks every ready interval until ctx is
// done, so the auditpipe_ready gauge is current when nobody asks /readyz.
// The first evaluation waits one interval: services register their checks
// as they start, and the gauge stays 0 until then.
func (a *Admin) evaluateReadiness(ctx context.Context) {
	t := time.NewTicker(a.readyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if failed := a.Ready(ctx); len(failed) > 0 && ctx.Err() == nil {
			names := make([]string, 0, len(failed))
			for n := range failed {
				names = append(names, n)
			}
			sort.Strings(names)
			a.logger.Debug("not ready", slog.Any("failing_checks", names))
		}
	}
}
