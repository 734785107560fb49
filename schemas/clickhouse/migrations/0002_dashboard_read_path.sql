-- 0002: what dashboards read (docs/dashboards.md says which panel reads
-- which object).
--
-- openai_audit_events: the deduplicated read path for panels that need
-- columns of single events (tables, geomap, failed logins by user and IP,
-- API-key scopes). A view over openai_audit_logs FINAL, so a copy of an
-- event that no merge has collapsed yet is never shown or counted twice.
-- do_not_merge_across_partitions_select_final is safe: the partition is
-- derived from eventTime and copies of an event share it (0001). The view
-- adds actorName, the actor as the detections name it: the email
-- (lower-cased), else the service account id, else the API key id, else
-- '(no actor)'.
--
-- openai_audit_counts_1m: events per minute by workspace, source, event
-- type and name, read-only flag, project, country and actor, for the
-- panels that count. Fed by a materialized view on every insert into the
-- storage table. Counting must survive duplicates: a replayed topic or a
-- re-polled event inserts a second copy of an event, which a counter would
-- count twice (the storage table collapses it only later, at a merge). So
-- the rollup does not count rows: it keeps the set of event ids of each
-- minute and key (uniqExact state of cityHash64(id), 8 bytes per event),
-- and a copy, which has the same id and eventTime, falls into the same
-- set. Readers count with uniqExactMerge(events). The 64-bit hash makes a
-- collision within one minute and key practically impossible (n^2 / 2^65).
-- A copy whose key columns differ (a re-poll enriched with a newer GeoIP
-- database that moved the address to another country) lands in two
-- countries; merged across countries it still counts once.
--
-- Because adding the same event twice changes nothing, the backfill below
-- (events loaded before this migration) may overlap with what the
-- materialized view already wrote, and may run twice: the result is the
-- same. On a large existing table the backfill reads the key columns of
-- every row once.
--
-- The rollup keeps rows as long as the events: the same TTL from
-- sourceTTL (0001), evaluated on the minute.
CREATE VIEW IF NOT EXISTS {{.Database}}.openai_audit_events{{.OnCluster}}
AS SELECT
    *,
    multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS actorName
FROM {{.Database}}.openai_audit_logs FINAL
SETTINGS do_not_merge_across_partitions_select_final = 1;

CREATE TABLE IF NOT EXISTS {{.Database}}.{{local "openai_audit_counts_1m"}}{{.OnCluster}}
(
    workspaceID String,
    sourceID String,
    minute DateTime,
    eventType String,
    eventName String,
    readOnly Bool,
    projectID String,
    country String,
    actorName String,
    sourceTTL UInt32,
    projectName SimpleAggregateFunction(anyLast, String),
    events AggregateFunction(uniqExact, UInt64)
)
ENGINE = {{engine "AggregatingMergeTree" "openai_audit_counts_1m"}}
PARTITION BY toYYYYMM(minute)
ORDER BY (workspaceID, sourceID, minute, eventType, eventName, readOnly, projectID, country, actorName, sourceTTL)
TTL toDateTime(if(sourceTTL = 0, 4291747200, least(toUInt64(toUnixTimestamp(minute)) + toUInt64(sourceTTL) * 86400, 4291747200)));
{{- if .Cluster}}

-- Cluster mode: rows of the rollup are written on the shard of their
-- events (the materialized view runs on each shard's storage table), so
-- the same key may live on several shards; readers merge the states on the
-- initiator. rand() as the sharding key keeps ClickHouse from assuming
-- that a GROUP BY over the sharding key is complete on each shard.
CREATE TABLE IF NOT EXISTS {{.Database}}.openai_audit_counts_1m{{.OnCluster}}
AS {{.Database}}.{{local "openai_audit_counts_1m"}}
ENGINE = Distributed({{quote .Cluster}}, {{quote .Database}}, {{quote (local "openai_audit_counts_1m")}}, rand());
{{- end}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.Database}}.{{local "openai_audit_counts_1m_mv"}}{{.OnCluster}}
TO {{.Database}}.{{local "openai_audit_counts_1m"}}
AS SELECT
    workspaceID,
    sourceID,
    toStartOfMinute(eventTime) AS minute,
    eventType,
    eventName,
    readOnly,
    projectID,
    srcASCountryCode AS country,
    multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS actorName,
    sourceTTL,
    anyLastSimpleState(projectName) AS projectName,
    uniqExactState(cityHash64(id)) AS events
FROM {{.Database}}.{{local "openai_audit_logs"}}
GROUP BY workspaceID, sourceID, minute, eventType, eventName, readOnly, projectID, country, actorName, sourceTTL;

-- Backfill: the events loaded before the materialized view existed.
INSERT INTO {{.Database}}.openai_audit_counts_1m
SELECT
    workspaceID,
    sourceID,
    toStartOfMinute(eventTime) AS minute,
    eventType,
    eventName,
    readOnly,
    projectID,
    srcASCountryCode AS country,
    multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS actorName,
    sourceTTL,
    anyLastSimpleState(projectName) AS projectName,
    uniqExactState(cityHash64(id)) AS events
FROM {{.Database}}.openai_audit_logs
GROUP BY workspaceID, sourceID, minute, eventType, eventName, readOnly, projectID, country, actorName, sourceTTL;
