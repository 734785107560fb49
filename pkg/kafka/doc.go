// Package kafka builds franz-go clients from configuration and provisions
// the topics the services need.
//
// # Clients
//
// Config (koanf-tagged, see DefaultConfig) is validated, then turned into
// kgo options by Config.Options or straight into a client by NewClient.
// The defaults are chosen to be safe for a pipeline that must not lose or
// duplicate data:
//
//   - Idempotent production (kgo's default, never disabled here) with
//     acks=all: a record is acknowledged only once every in-sync replica
//     has it, and retries cannot write duplicates or reorder a partition.
//   - Bounded producer memory: max_buffered_records (10,000) and
//     max_buffered_bytes (sized by the service from its memory budget with
//     Config.Sized; 64 MiB without one). When either is reached Produce
//     blocks until earlier records finish, which is the producer's
//     backpressure; nothing is dropped. A single record larger than
//     max_buffered_bytes fails with kerr.MessageTooLarge.
//   - Bounded fetches: fetch_max_bytes and fetch_max_partition_bytes,
//     sized from the memory budget the same way (franz-go's 50 MiB and
//     1 MiB without one).
//   - zstd batch compression, falling back to none for brokers older than
//     Kafka 2.1. A batch is sent compressed only when that makes it smaller.
//   - TLS 1.2 or later when enabled; certificate verification stays on
//     unless insecure_skip_verify is set explicitly.
//   - SASL PLAIN and SCRAM-SHA-256/512; the password is a config.Secret, so
//     it never reaches logs or error strings.
//
// The library logs through the passed *slog.Logger (plugin/kslog) one level
// down: kgo's info lines at debug, its debug lines below debug; warnings and
// errors keep their level. Metrics go through plugin/kprom to the passed
// prometheus.Registerer as auditpipe_kafka_<metric>{component="..."}: the
// component label keeps several clients in one process apart, so it must be
// unique among the live clients sharing a registerer (NewClient returns an
// error otherwise). Closing a client unregisters its metrics.
//
// # Topics
//
// EnsureTopics creates missing topics from TopicSpecs through kadm, leaves
// existing ones alone and checks them with CheckTopicConfig: a
// cleanup.policy other than the spec's is an error wrapping
// ErrIncompatibleTopic, smaller partition or replica counts and other config
// differences are logged. Refusals from the broker (missing ACLs, a create
// policy, too few brokers for the replication factor) come back as errors
// saying what to do, wrapping the kerr error for errors.Is.
package kafka
