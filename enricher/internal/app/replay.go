package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/auditpipe/auditpipe/enricher/internal/replay"
	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// ReplayMain is the "enricher replay" command: with every replica stopped,
// it resets the group's offsets on the raw topic to the given time so the
// next start reprocesses from there. It returns the exit code.
func ReplayMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("enricher replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration `file` (AUDITPIPE_ENRICHER_* variables override it)")
	since := fs.String("since", "", "reprocess records with a timestamp at or after this RFC 3339 `time` (required)")
	dryRun := fs.Bool("dry-run", false, "print the offset moves without committing them")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the whole operation")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: enricher replay --since 2026-11-01T00:00:00Z [--config file] [--dry-run]\n\nStop every enricher replica first; the command refuses while the group has members.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	t, err := time.Parse(time.RFC3339Nano, *since)
	if err != nil {
		fmt.Fprintf(stderr, "enricher replay: --since: want an RFC 3339 time: %v\n", err)
		return 2
	}
	cfg := DefaultConfig()
	if err := config.Load(&cfg, config.Options{File: *file, EnvPrefix: "AUDITPIPE_ENRICHER_"}); err != nil {
		fmt.Fprintf(stderr, "enricher replay: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	moves, err := Replay(ctx, cfg, t, *dryRun, nil)
	if err != nil {
		fmt.Fprintf(stderr, "enricher replay: %v\n", err)
		return 1
	}
	verb := "moved"
	if *dryRun {
		verb = "would move"
	}
	for _, m := range moves {
		fmt.Fprintf(stdout, "%s partition %d: %s %d -> %d\n", cfg.Topics.Raw, m.Partition, verb, m.From, m.To)
	}
	return 0
}

// Replay resets cfg.Group's offsets on cfg.Topics.Raw to since (see
// replay.Reset).
func Replay(ctx context.Context, cfg Config, since time.Time, dryRun bool, logger *slog.Logger) ([]replay.Move, error) {
	cl, err := kafka.NewClient(cfg.Kafka, logger, nil, "enricher-replay")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return replay.Reset(ctx, kadm.NewClient(cl), cfg.Group, cfg.Topics.Raw, since, dryRun)
}
