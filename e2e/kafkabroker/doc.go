// Package kafkabroker fetches Apache Kafka server jars from Maven Central and
// runs a single-node KRaft broker (combined broker and controller) on loopback
// for the end-to-end tests.
package kafkabroker
