// Command chserver serves the ClickHouse HTTP interface in front of the
// embedded ClickHouse engine (libchdb), for development and tests only.
//
//	chserver [-addr 127.0.0.1:8123] [-data-dir DIR] [-pool-size 4] [-user U] [-password P]
//	chserver -fetch   # download libchdb and the web pages' scripts into the cache, print libchdb's path, exit
//
// Besides the HTTP interface it serves ClickHouse's web pages: the SQL
// console at /play and the charts at /dashboard.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "chserver: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chserver", flag.ContinueOnError)
	addr := fs.String("addr", chserver.DefaultAddr, "listen address")
	dataDir := fs.String("data-dir", defaultDataDir(), "engine data directory (kept across restarts)")
	poolSize := fs.Int("pool-size", 4, "engine connections (parallel queries)")
	user := fs.String("user", "", "required user name (empty: no authentication unless a password is set)")
	password := fs.String("password", "", "required password (default $CHSERVER_PASSWORD)")
	fetch := fs.Bool("fetch", false, "only download libchdb and the web pages' scripts if missing, print libchdb's path and exit")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *password == "" {
		*password = os.Getenv("CHSERVER_PASSWORD")
	}
	libPath, err := chdb.EnsureLibrary(ctx, os.Stderr)
	if err != nil {
		return err
	}
	assets, err := webui.EnsureAssets(ctx, os.Stderr)
	if err != nil {
		return err
	}
	if *fetch {
		fmt.Println(libPath)
		return nil
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	srv, err := chserver.New(chserver.Config{
		Addr: *addr, DataDir: *dataDir, PoolSize: *poolSize,
		User: *user, Password: *password, LibPath: libPath, WebAssetsDir: assets,
	}, logger)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// defaultDataDir is a per-user directory that survives restarts.
func defaultDataDir() string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), "auditpipe-chserver")
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "auditpipe", "chserver")
}
