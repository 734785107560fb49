// Package assign spreads work across poller replicas with a Kafka consumer
// group over the state topic: each replica owns the partitions the group
// assigns it, and with them the sources whose state lives there.
package assign
