-- 0001: the openai_audit_logs table, exactly the 46 columns of the seed
-- (schemas/seed_columns.tsv), same names, order and types. Codecs are allowed,
-- LowCardinality and Nullable wrappers are not: DESCRIBE TABLE must list the
-- seed's types verbatim.
--
-- This file is a Go text/template rendered by pkg/schema.Migrations with the
-- fields .Database (validated identifier), .Cluster (empty on a single node)
-- and .OnCluster ("" or " ON CLUSTER `name`"), and the functions local
-- (the table that stores rows: t, or t_local in cluster mode), engine
-- (X(args), or ReplicatedX(path, replica, args) in cluster mode) and quote
-- (a SQL string literal).
--
-- Engine: ReplacingMergeTree(receivedAt). An event can reach the table twice
-- (a replayed topic, a loader retry older than the insert-dedup window). The
-- enricher derives `id` deterministically from the source and the event, so
-- the second copy arrives as a row with an identical sorting key.
-- ReplacingMergeTree collapses rows with equal ORDER BY keys (within one
-- partition) into one at merge time; queries that must not see a duplicate
-- before the merge use FINAL or argMax (docs/schema.md).
--
-- Version column receivedAt: the surviving row is the one with the greatest
-- receivedAt (ties: the last inserted). A replay of the enriched topic carries
-- the same receivedAt; a re-poll of the same event carries a newer one and its
-- fresher enrichment wins. Either way exactly one row survives, and which one
-- does not depend on insert order (two loaders in a rebalance may insert out
-- of order).
--
-- ORDER BY (workspaceID, sourceID, eventTime, id): the key must identify one
-- source event, and `id` does (deterministic per source and event). The
-- leading columns serve the usual query, "this workspace/source, this time
-- range". eventTime adds no fragility: rows only merge within a partition,
-- and the partition is derived from eventTime anyway, so a duplicate must
-- agree on eventTime (effective_at, immutable at the source) regardless.
-- eventName is deliberately not in the key: it is derived by normalization
-- (a mapping change would split a duplicate pair) and it would scatter time
-- ranges; a set skip index serves filters on it instead.
--
-- PARTITION BY toYYYYMM(eventTime): monthly parts, a few dozen partitions per
-- year of audit data; retention and backfills work per month.
--
-- TTL from sourceTTL (days): a row expires sourceTTL days after eventTime;
-- sourceTTL = 0 means keep forever (expires at 2106-01-01, the end of the
-- DateTime range). The sum is computed in UInt64 and clamped, because
-- DateTime arithmetic wraps around at 2106 and a huge sourceTTL would
-- otherwise produce an expiry in the past. Expired rows are removed at
-- merges (merge_with_ttl_timeout); OPTIMIZE TABLE ... FINAL forces it.
--
-- Insert dedup: the loader sends insert_deduplication_token (partition +
-- offset range), so a retried batch inserts nothing twice. On a single node
-- that needs non_replicated_deduplication_window > 0 (default 0); replicated
-- tables use replicated_deduplication_window. 10000 remembered blocks cover
-- several minutes of inserts from many loaders at about one insert per second
-- each (an insert spanning two months is two blocks), far longer than a crash
-- and restart takes; older replays are still collapsed by the engine.
CREATE TABLE IF NOT EXISTS {{.Database}}.{{local "openai_audit_logs"}}{{.OnCluster}}
(
    workspaceID String,
    sourceID String,
    sourceType String,
    sourceTTL UInt32,
    receivedAt DateTime,
    id String,
    eventTime DateTime,
    eventName String,
    eventID String,
    srcIP String,
    srcASCountryCode String,
    srcASNumber UInt32,
    srcASOrganization String,
    srcCity String,
    srcConnectionType String,
    srcISP String,
    srcLatitude Float64,
    srcLongitude Float64,
    srcUserType String,
    dstIP String,
    dstASCountryCode String,
    dstASNumber UInt32,
    dstASOrganization String,
    dstCity String,
    dstConnectionType String,
    dstISP String,
    dstLatitude Float64,
    dstLongitude Float64,
    dstUserType String,
    actor Map(String, String),
    tags Map(String, String),
    resources Array(String),
    serviceName String,
    enrichments Array(Tuple(data Map(String, String), name String, provider String, type String, value String)),
    readOnly Bool,
    rawLog String CODEC(ZSTD(1)),
    eventType String,
    actorType String,
    actorIP String,
    actorUserID String,
    actorUserEmail String,
    apiKeyID String,
    apiKeyType String,
    serviceAccountID String,
    projectID String,
    projectName String,
    INDEX idx_eventName eventName TYPE set(1024) GRANULARITY 4,
    INDEX idx_eventID eventID TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = {{engine "ReplacingMergeTree" "openai_audit_logs" "receivedAt"}}
PARTITION BY toYYYYMM(eventTime)
ORDER BY (workspaceID, sourceID, eventTime, id)
TTL toDateTime(if(sourceTTL = 0, 4291747200, least(toUInt64(toUnixTimestamp(eventTime)) + toUInt64(sourceTTL) * 86400, 4291747200)))
SETTINGS {{if .Cluster}}replicated_deduplication_window = 10000{{else}}non_replicated_deduplication_window = 10000{{end}};
{{- if .Cluster}}

-- Cluster mode: the table users query and the loader inserts into. Rows are
-- sharded by the event's identity, so every copy of an event lands on the
-- same shard and the local ReplacingMergeTree can collapse it.
CREATE TABLE IF NOT EXISTS {{.Database}}.openai_audit_logs{{.OnCluster}}
AS {{.Database}}.{{local "openai_audit_logs"}}
ENGINE = Distributed({{quote .Cluster}}, {{quote .Database}}, {{quote (local "openai_audit_logs")}}, cityHash64(workspaceID, sourceID, id));
{{- end}}
