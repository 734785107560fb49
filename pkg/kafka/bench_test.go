package kafka_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// BenchmarkProduceDefaults measures producing 200-byte records with the
// default configuration (zstd, acks=all, idempotent, bounded buffer) to an
// in-process broker that discards what it receives.
func BenchmarkProduceDefaults(b *testing.B) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "bench"), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	cfg := kafka.DefaultConfig()
	cfg.Brokers = fake.ListenAddrs()
	cl, err := kafka.NewClient(cfg, nil, nil, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()

	value := make([]byte, 200)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	ctx := context.Background()
	var failed error
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		cl.Produce(ctx, &kgo.Record{Topic: "bench", Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if failed != nil {
		b.Fatal(failed)
	}
}
