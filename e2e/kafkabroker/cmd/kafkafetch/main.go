// Command kafkafetch fetches the Apache Kafka server jars the end-to-end tests
// run (see package kafkabroker), printing progress on stderr and the jar
// directory on stdout.
//
//	go run ./kafkabroker/cmd/kafkafetch                      # fetch (or find cached) and print the lib dir
//	go run ./kafkabroker/cmd/kafkafetch -write-sums FILE     # after changing kafkabroker.Version: fetch afresh and pin the sums
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/auditpipe/auditpipe/e2e/kafkabroker"
)

func main() {
	writeSums := flag.String("write-sums", "", "fetch the jars into a temporary directory and write their SHA-256 sums to this file (maven/jars.sha256) instead of using the cache")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *writeSums); err != nil {
		fmt.Fprintln(os.Stderr, "kafkafetch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, writeSums string) error {
	if writeSums != "" {
		dir, err := os.MkdirTemp("", "kafkafetch-")
		if err != nil {
			return fmt.Errorf("creating temporary directory: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := kafkabroker.FetchJars(ctx, dir, os.Stderr); err != nil {
			return err
		}
		sums, err := kafkabroker.SumJars(dir)
		if err != nil {
			return err
		}
		header := fmt.Sprintf("# SHA-256 of every jar that maven/pom.xml resolves for Apache Kafka %s (Maven checked\n"+
			"# them against Maven Central's checksums with -C). Regenerate after changing the version:\n"+
			"#   cd e2e && go run ./kafkabroker/cmd/kafkafetch -write-sums kafkabroker/maven/jars.sha256\n", kafkabroker.Version)
		if err := os.WriteFile(writeSums, []byte(header+sums), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", writeSums, err)
		}
		fmt.Fprintf(os.Stderr, "kafkafetch: wrote %s\n", writeSums)
		return nil
	}
	if _, ok := kafkabroker.JavaAvailable(); !ok {
		fmt.Fprintf(os.Stderr, "kafkafetch: warning: Java %d+ not found; the jars are fetched but the broker cannot run (install openjdk-17-jre-headless)\n", kafkabroker.MinJavaVersion)
	}
	dir, err := kafkabroker.Ensure(ctx, os.Stderr)
	if errors.Is(err, kafkabroker.ErrMavenNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("fetching Apache Kafka %s: %w", kafkabroker.Version, err)
	}
	fmt.Println(dir)
	return nil
}
