package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const javaMissing = "Java 17 not found: skipping the Apache Kafka tests; install openjdk-17-jre-headless"

// StartTest starts a broker for t in a fresh temporary directory, fetching the
// jars first if needed, and stops it (SIGKILL if SIGTERM is not enough) when t
// ends; a failed test also logs the tail of the broker's log. Without Java 17
// or Maven it skips t with a loud message, or fails it when the CI environment
// variable is set, so that CI cannot go green without having run the tests.
func StartTest(t testing.TB) *Broker {
	t.Helper()
	return StartTestConfig(t, Config{})
}

// StartTestConfig is StartTest with a base configuration; Dir and LibDir are
// filled in when empty.
func StartTestConfig(t testing.TB, cfg Config) *Broker {
	t.Helper()
	java := RequireJava(t)
	if cfg.Java == "" {
		cfg.Java = java
	}
	if cfg.LibDir == "" {
		cfg.LibDir = RequireLibs(t)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting Apache Kafka: %v", err)
	}
	t.Logf("Apache Kafka %s ready on %s in %s", Version, b.Addr(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("stopping Apache Kafka: %v", err)
			b.Kill()
		}
		if t.Failed() {
			t.Logf("--- tail of %s ---\n%s", b.LogPath(), b.logTail(0, 60))
		}
	})
	return b
}

// RequireJava returns the path of a Java 17+ executable, or skips t (fails it
// when CI is set) with a loud message.
func RequireJava(t testing.TB) string {
	t.Helper()
	path, major, err := javaVersion(context.Background())
	switch {
	case err != nil:
		skipOrFail(t, fmt.Sprintf("%s (%v)", javaMissing, err))
	case major < MinJavaVersion:
		skipOrFail(t, fmt.Sprintf("%s (%s is Java %d)", javaMissing, path, major))
	}
	return path
}

// RequireLibs returns the jar directory from Ensure, or skips t (fails it when
// CI is set) if Maven is missing; any other fetch error fails t.
func RequireLibs(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := Ensure(ctx, testWriter{t})
	switch {
	case errors.Is(err, ErrMavenNotFound):
		skipOrFail(t, err.Error()+": skipping the Apache Kafka tests")
	case err != nil:
		t.Fatalf("fetching Apache Kafka: %v", err)
	}
	return dir
}

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	loud := fmt.Sprintf("\n%s\n!!! %s\n%s", strings.Repeat("!", 80), msg, strings.Repeat("!", 80))
	if os.Getenv("CI") != "" {
		t.Fatal(loud + "\n(CI is set, so this is a failure, not a skip)")
	}
	t.Skip(loud)
}

// testWriter turns progress lines into t.Log calls.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
