// Package kafkatest provides in-process Kafka (kfake) and Schema Registry
// (srfake) fixtures for tests, tuned so that tests stay fast. The registry
// enforces compatibility the way Confluent's does (EnforceCompatibility),
// which srfake alone does not.
//
// Every fixture is closed through t.Cleanup. Clients made here use a 50 ms
// MetadataMinAge: with kgo's default of 5 s, every retry after a leadership
// error (including injected faults) waits 5 s.
//
// kfake pins: kfake has only pseudo-versions and its go.mod asks for an
// older franz-go; pkg/go.mod pins kfake v0.0.0-20260918054303-01f206a7e32c
// together with franz-go v1.22.3 and kmsg v1.15.1, which compile together.
// Upgrading one without the others fails with "vs.EachSupportedFeature
// undefined".
package kafkatest
