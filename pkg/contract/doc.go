// Package contract is the one home of what the auditpipe services agree
// on across process boundaries: the Kafka topic and consumer group names,
// the Schema Registry subject, the record header names, the dead-letter
// record every stage writes and the one dead-letter metric every stage
// exports. A service never spells one of these names itself: it imports
// them from here, so that they cannot drift apart.
//
// docs/contracts.md describes the flow these names take part in and the
// guarantees of each hop.
package contract
