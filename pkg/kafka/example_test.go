package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/kafka"
)

func ExampleNewClient() {
	// An in-process broker stands in for the real cluster here.
	fake, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fake.Close()

	cfg := kafka.DefaultConfig()
	cfg.Brokers = fake.ListenAddrs()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()

	cl, err := kafka.NewClient(cfg, logger, reg, "poller-producer")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := kafka.TopicSpec{Name: "openai-audit-raw", Partitions: 3, ReplicationFactor: 1}
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), logger, raw); err != nil {
		fmt.Println(err)
		return
	}
	// Produce blocks once max_buffered_records or max_buffered_bytes are
	// reached; ProduceSync waits for acks=all.
	res := cl.ProduceSync(ctx, &kgo.Record{Topic: raw.Name, Key: []byte("evt-1"), Value: []byte(`{"id":"evt-1"}`)})
	fmt.Println("produce error:", res.FirstErr())
	fmt.Println("ping error:", kafka.Ping(ctx, cl))
	// Output:
	// produce error: <nil>
	// ping error: <nil>
}
