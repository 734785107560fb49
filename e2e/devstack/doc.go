// Package devstack runs the auditpipe pipeline on embedded infrastructure:
// an in-process Kafka (kfake, data kept in a directory), a Schema Registry
// (srfake) on a fixed port, the embedded ClickHouse engine behind its HTTP
// interface, the OpenAI audit-log simulator and synthetic GeoIP databases,
// then the poller, enricher and loader as separate processes from bin/.
//
// `make run` uses it through bin/devstack; the end-to-end suite uses it to
// bring up the same stack on free ports, optionally against an external
// Kafka (Apache Kafka) instead of kfake.
package devstack
