package chservertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
)

// shared is the process-wide server: the engine supports one data directory
// per process, so every test of a binary shares it and isolates itself with
// its own database (NewDatabase).
var shared struct {
	mu     sync.Mutex
	url    string
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// Start returns the URL (http://127.0.0.1:PORT) of the test binary's shared
// in-process server, starting it on first use on a free port and a temporary
// data directory. Without libchdb it calls t.Fatal when the CI environment
// variable is set (CI must never skip silently) and t.Skip otherwise.
// Safe for concurrent use. Call [Stop] from TestMain to remove the data
// directory and end the server's goroutines (e.g. before goleak checks).
func Start(t testing.TB) string {
	t.Helper()
	RequireLibrary(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.url != "" {
		return shared.url
	}
	dir, err := os.MkdirTemp("", "chservertest-")
	if err != nil {
		t.Fatalf("creating data dir: %v", err)
	}
	srv, err := chserver.New(chserver.Config{Addr: "127.0.0.1:0", DataDir: dir, PoolSize: 4}, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("starting chserver: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	shared.url, shared.dir, shared.cancel, shared.done = srv.URL(), dir, cancel, done
	return shared.url
}

// Stop shuts the shared server down and removes its data directory. It is a
// no-op when no server was started. Call it at the end of TestMain.
func Stop() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.url == "" {
		return nil
	}
	shared.cancel()
	err := <-shared.done
	if rerr := os.RemoveAll(shared.dir); err == nil {
		err = rerr
	}
	shared.url = ""
	return err
}

// RequireLibrary skips the test (or fails it when $CI is set) if libchdb is
// not installed.
func RequireLibrary(t testing.TB) {
	t.Helper()
	if _, ok := chdb.LibraryPath(); ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("libchdb not found: run `make deps` (CI must not skip)")
	}
	t.Skip("libchdb not found: run `make deps`")
}

// NewDatabase creates a uniquely named database on the shared server and
// drops it when the test ends. It returns the server URL and the database
// name.
func NewDatabase(t testing.TB) (serverURL, database string) {
	t.Helper()
	u := Start(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "test_" + sanitize(t.Name()) + "_" + hex.EncodeToString(b[:])
	if err := Exec(u, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	t.Cleanup(func() {
		// The database, then the companions the loader creates next to it
		// (its migrations' <name>_rollups, the detections' <name>_detections).
		for _, db := range []string{name, name + "_rollups", name + "_detections"} {
			if err := Exec(u, "DROP DATABASE IF EXISTS "+db+" SYNC"); err != nil {
				t.Errorf("dropping database: %v", err)
			}
		}
	})
	return u, name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[:40]
	}
	return out
}

// Exec runs one statement against the server at serverURL (POST body).
func Exec(serverURL, query string) error {
	resp, err := http.Post(serverURL+"/", "text/plain", strings.NewReader(query))
	if err != nil {
		return fmt.Errorf("posting query: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("query %q: %s: %s", query, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// DSN returns a clickhouse-go DSN for the shared server and database, e.g.
// "http://127.0.0.1:PORT/db".
func DSN(serverURL, database string) string {
	return serverURL + "/" + url.PathEscape(database)
}
