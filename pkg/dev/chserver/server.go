package chserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

// Config configures a [Server].
type Config struct {
	// Addr is the listen address; empty means 127.0.0.1:8123. Use
	// "127.0.0.1:0" for a free port.
	Addr string
	// DataDir is the engine's data directory (required). One data directory
	// per process: see package chdb.
	DataDir string
	// PoolSize is the number of engine connections (parallel queries); zero
	// means 4.
	PoolSize int
	// User and Password, when either is set, are required on every request
	// (HTTP basic auth, X-ClickHouse-User/-Key headers or user/password
	// parameters). An empty User means "default".
	User     string
	Password string
	// LibPath is the libchdb.so to load; empty means chdb.LibraryPath().
	LibPath string
	// ShutdownTimeout bounds the graceful shutdown in Run; zero means 10s.
	ShutdownTimeout time.Duration
	// WebAssetsDir holds the scripts of ClickHouse's web pages
	// (webui.EnsureAssets); empty means webui.CacheDir(). The pages /play
	// and /dashboard are read from the library at LibPath.
	WebAssetsDir string
}

// DefaultAddr is ClickHouse's HTTP port on loopback.
const DefaultAddr = "127.0.0.1:8123"

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.PoolSize == 0 {
		c.PoolSize = 4
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is required"))
	}
	if c.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("PoolSize must not be negative, got %d", c.PoolSize))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("ShutdownTimeout must not be negative, got %s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Server is a ClickHouse HTTP interface over an embedded engine.
type Server struct {
	cfg      Config
	log      *slog.Logger
	db       *chdb.DB
	ln       net.Listener
	http     *http.Server
	sessions []session // indexed by chdb.Conn.ID; owned by the Conn's holder
	hello    hello
	web      *webui.Handler

	runOnce sync.Once
}

// hello is what the handshake query returns.
type hello struct {
	displayName, version, timezone string
}

// New validates cfg, opens the engine on cfg.DataDir and listens on
// cfg.Addr. Serving starts with [Server.Run]. If Run is never called, Close
// releases the resources.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating chserver config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db, err := chdb.Open(chdb.Options{LibPath: cfg.LibPath, Path: cfg.DataDir, PoolSize: cfg.PoolSize})
	if err != nil {
		return nil, fmt.Errorf("opening engine: %w", err)
	}
	s := &Server{cfg: cfg, log: logger, db: db, sessions: make([]session, db.PoolSize()), web: newWebUI(cfg)}
	if err := s.init(); err != nil {
		_ = db.Close(context.Background())
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = db.Close(context.Background())
		return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// newWebUI serves ClickHouse's pages from the library the engine runs.
func newWebUI(cfg Config) *webui.Handler {
	lib := cfg.LibPath
	if lib == "" {
		lib, _ = chdb.LibraryPath()
	}
	assets := cfg.WebAssetsDir
	if assets == "" {
		assets, _ = webui.CacheDir()
	}
	return webui.NewHandler(lib, assets)
}

// init applies the baseline settings on every connection and reads the
// handshake values.
func (s *Server) init() error {
	ctx := context.Background()
	conns := make([]*chdb.Conn, 0, s.db.PoolSize())
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range s.db.PoolSize() {
		c, err := s.db.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("initializing connections: %w", err)
		}
		conns = append(conns, c)
		if err := s.sessions[c.ID()].init(c); err != nil {
			return fmt.Errorf("initializing connection: %w", err)
		}
	}
	r, err := conns[0].Query("SELECT displayName(), version(), timezone()", "TabSeparatedRaw", nil)
	if err != nil {
		return fmt.Errorf("reading server info: %w", err)
	}
	defer r.Close()
	f := strings.Split(strings.TrimRight(string(r.Bytes()), "\n"), "\t")
	if len(f) != 3 {
		return fmt.Errorf("reading server info: unexpected %q", r.Bytes())
	}
	s.hello = hello{displayName: f[0], version: f[1], timezone: f[2]}
	return nil
}

// URL returns the base URL, e.g. http://127.0.0.1:8123.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr returns the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done, then shuts down gracefully: it stops
// accepting connections, waits up to ShutdownTimeout for requests in flight,
// and closes the engine. It returns nil after a shutdown caused by ctx.
// Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("chserver: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	s.log.Info("chserver listening", slog.String("url", s.URL()), slog.String("data_dir", s.db.Path()), slog.Int("pool_size", s.db.PoolSize()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.ln) }()
	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	return errors.Join(err, s.shutdown())
}

func (s *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shutting down http: %w", err))
		_ = s.http.Close()
	}
	if err := s.db.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	s.log.Info("chserver stopped")
	return errors.Join(errs...)
}

// Close releases a Server whose Run was never called. After Run it is a
// no-op.
func (s *Server) Close() error {
	var err error
	s.runOnce.Do(func() {
		_ = s.ln.Close()
		err = s.db.Close(context.Background())
	})
	return err
}
