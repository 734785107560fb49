package contract

// Topics. Each service takes its topic names from its configuration; these
// are the defaults every service and deployment example shares.
const (
	// TopicRaw holds the audit-log objects exactly as OpenAI sent them,
	// keyed by event id, with the poller's headers (HeaderWorkspaceID …).
	TopicRaw = "openai-audit-raw"
	// TopicEnriched holds the 46-column Avro records in the Confluent wire
	// format, keyed like the raw records, with the raw record's headers.
	TopicEnriched = "openai-audit-enriched"
	// TopicDLQ holds the records a stage can never process: the original
	// key, value and headers plus the dead-letter headers (HeaderDLQStage …).
	TopicDLQ = "openai-audit-dlq"
	// TopicPollerState is the compacted topic of the poller's per-source
	// state (watermarks and dedup memory), keyed by source id.
	TopicPollerState = "auditpipe-poller-state"
	// TopicInventory holds the organization's inventory as change records
	// (pkg/inventory.Record, JSON): one per object that appeared, changed
	// or disappeared between two snapshots of a source, every object once
	// a day (baseline), and one record closing each snapshot. Keyed
	// <source_id>/<kind>/<object_id>, written by the poller in the same
	// transactions as its state, with the raw topic's headers (no
	// source_ttl, no tags).
	TopicInventory = "openai-audit-inventory"
)

// Consumer groups.
const (
	// GroupPoller spreads the sources over the poller replicas (through
	// the partitions of TopicPollerState).
	GroupPoller = "auditpipe-poller"
	// GroupEnricher reads TopicRaw.
	GroupEnricher = "auditpipe-enricher"
	// GroupLoader reads TopicEnriched.
	GroupLoader = "auditpipe-loader"
)

// SubjectEnriched is the Schema Registry subject of TopicEnriched's values
// (TopicNameStrategy).
const SubjectEnriched = TopicEnriched + "-value"

// SourceTypeOpenAI is the HeaderSourceType value of every record the
// poller writes.
const SourceTypeOpenAI = "openai"

// Headers the poller sets on every raw record; the enricher reads them and
// copies every header of the raw record to the enriched one.
const (
	// HeaderWorkspaceID is the configured workspace of the source.
	HeaderWorkspaceID = "workspace_id"
	// HeaderSourceID is the configured id of the source.
	HeaderSourceID = "source_id"
	// HeaderSourceType is SourceTypeOpenAI.
	HeaderSourceType = "source_type"
	// HeaderSourceTTL is the row TTL in days, decimal (0: keep forever).
	HeaderSourceTTL = "source_ttl"
	// HeaderReceivedAt is when the poller received the event's page,
	// RFC 3339 with nanoseconds, UTC.
	HeaderReceivedAt = "received_at"
	// HeaderPollerVersion is the poller's build version.
	HeaderPollerVersion = "poller_version"
	// HeaderTags is the source's static tags as a JSON object of strings;
	// present only when the source has tags.
	HeaderTags = "tags"
)

// Dead-letter headers, added after the original record's headers.
const (
	// HeaderDLQStage is the Stage that dead-lettered the record.
	HeaderDLQStage = "dlq_stage"
	// HeaderDLQReason is a short stable class (invalid_json,
	// clickhouse_rejected, …): the reason label of the DLQ metric.
	HeaderDLQReason = "dlq_reason"
	// HeaderDLQError is the error message, at most MaxErrorBytes.
	HeaderDLQError = "dlq_error"
	// HeaderDLQTopic, HeaderDLQPartition and HeaderDLQOffset locate the
	// original record.
	HeaderDLQTopic     = "dlq_topic"
	HeaderDLQPartition = "dlq_partition"
	HeaderDLQOffset    = "dlq_offset"
	// HeaderDLQTime is when the record was dead-lettered, RFC 3339 with
	// nanoseconds, UTC.
	HeaderDLQTime = "dlq_time"
)

// Stage names a service that dead-letters records: the HeaderDLQStage
// value and the stage label of the DLQ metric.
type Stage string

// Stages.
const (
	// StagePoller dead-letters events the raw topic cannot hold; they were
	// never in a topic, so their dlq_partition and dlq_offset are -1.
	StagePoller   Stage = "poller"
	StageEnricher Stage = "enricher"
	StageLoader   Stage = "loader"
)
