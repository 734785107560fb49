-- 0002: what dashboards read (docs/dashboards.md says which panel reads
-- which object, with measurements).
--
-- openai_audit_events: the deduplicated read path for panels that need
-- columns of single events (tables, the geomap, failed logins by user and
-- IP, API-key scopes). A view over openai_audit_logs FINAL, so a copy of an
-- event that no merge has collapsed yet is never shown or counted twice.
-- do_not_merge_across_partitions_select_final is safe: the partition is
-- derived from eventTime and copies of an event share it (0001). The view
-- adds actorName, the actor as the detections name it: the email
-- (lower-cased), else the service account id, else the API key id, else
-- '(no actor)'.
--
-- openai_audit_counts: events per hour by workspace, source, event name
-- (with its type and read-only flag, which follow from the name), project
-- and country, for the panels that count; plain counters, one row per key
-- and hour however many events it holds. The actor is not a key: there are
-- many actors, and an hour of a big organization would have about as many
-- keys as events; panels filtered by actor read openai_audit_events.
--
-- Counters and duplicates. A materialized view that adds every inserted row
-- to a counter counts a copy of an event (a replayed topic, a re-polled
-- event) twice; the storage table collapses the copy only later, at a
-- merge. Keeping the set of event ids per key instead (uniqExact states)
-- makes counting exact but costs per event at read time: measured, it is
-- slower than FINAL over the table itself. So the counters are computed
-- from the deduplicated events and recomputed when events arrive:
--
--   1. a materialized view on the storage table marks the (workspace,
--      source, hour) of every inserted row dirty in
--      <database>_rollups.dirty_hours, with the insertion time;
--   2. a refreshable materialized view, every minute, recounts the hours
--      dirtied since shortly before its previous run from
--      openai_audit_events (FINAL) and appends the counts with their
--      computation time to <database>_rollups.openai_audit_counts_1h, a
--      ReplacingMergeTree that keeps the newest count of each key. Keys of a
--      recounted hour that no longer occur (an event re-polled with a newer
--      GeoIP database moved to another country) get a count of 0.
--
-- A copy of an event dirties its hour and the recount, from FINAL, counts
-- it once; a late insert (a loader catching up on old events) dirties the
-- old hour, whatever receivedAt says. Counts lag the table by at most the
-- refresh interval (a minute). Refreshable views need a database with the
-- Atomic (or Replicated) engine, hence <database>_rollups, as the
-- detections have their own (docs/detections.md).
--
-- The insertion below marks every hour already in the table dirty: the
-- first refresh counts them (the backfill). Running it twice changes
-- nothing: recounts replace counts.
CREATE VIEW IF NOT EXISTS {{.Database}}.openai_audit_events{{.OnCluster}}
AS SELECT
    *,
    multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS actorName
FROM {{.Database}}.openai_audit_logs FINAL
SETTINGS do_not_merge_across_partitions_select_final = 1;

CREATE DATABASE IF NOT EXISTS {{.Database}}_rollups{{.OnCluster}}
ENGINE = {{if .Cluster}}Replicated({{quote (print "/clickhouse/auditpipe/databases/" .Database "_rollups")}}, 'all', '{replica}'){{else}}Atomic{{end}};

-- One row per (workspace, source, hour) once merged: the newest dirtiedAt.
CREATE TABLE IF NOT EXISTS {{.Database}}_rollups.dirty_hours
(
    workspaceID String,
    sourceID String,
    hour DateTime,
    dirtiedAt DateTime
)
ENGINE = {{if .Cluster}}Replicated{{end}}ReplacingMergeTree(dirtiedAt)
ORDER BY (workspaceID, sourceID, hour);

CREATE TABLE IF NOT EXISTS {{.Database}}_rollups.openai_audit_counts_1h
(
    workspaceID String,
    sourceID String,
    hour DateTime,
    eventType String,
    eventName String,
    readOnly Bool,
    projectID String,
    country String,
    sourceTTL UInt32,
    projectName String,
    events UInt64,
    computedAt DateTime
)
ENGINE = {{if .Cluster}}Replicated{{end}}ReplacingMergeTree(computedAt)
PARTITION BY toYYYYMM(hour)
ORDER BY (workspaceID, sourceID, hour, eventType, eventName, readOnly, projectID, country, sourceTTL)
TTL toDateTime(if(sourceTTL = 0, 4291747200, least(toUInt64(toUnixTimestamp(hour)) + toUInt64(sourceTTL) * 86400 + 3600, 4291747200)));

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.Database}}.{{local "openai_audit_dirty_hours_mv"}}{{.OnCluster}}
TO {{.Database}}_rollups.dirty_hours
AS SELECT DISTINCT workspaceID, sourceID, toStartOfHour(eventTime) AS hour, now() AS dirtiedAt
FROM {{.Database}}.{{local "openai_audit_logs"}};

INSERT INTO {{.Database}}_rollups.dirty_hours
SELECT DISTINCT workspaceID, sourceID, toStartOfHour(eventTime) AS hour, now() AS dirtiedAt
FROM {{.Database}}.openai_audit_logs;

-- The recount. `done` is when the newest counts were computed (0 before
-- the first run); hours dirtied from ten minutes before it on are
-- recounted, which covers inserts that were running while it ran.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.Database}}_rollups.recount_hours
REFRESH EVERY 1 MINUTE APPEND
TO {{.Database}}_rollups.openai_audit_counts_1h
AS WITH
    (SELECT max(computedAt) FROM {{.Database}}_rollups.openai_audit_counts_1h) AS done,
    dirty AS (SELECT workspaceID, sourceID, hour FROM {{.Database}}_rollups.dirty_hours WHERE toUInt64(dirtiedAt) + 600 >= toUInt64(done))
SELECT
    workspaceID, sourceID, hour, eventType, eventName, readOnly, projectID, country, sourceTTL,
    anyIf(pn, n > 0) AS projectName,
    sum(n) AS events,
    now() AS computedAt
FROM
(
    SELECT workspaceID, sourceID, toStartOfHour(eventTime) AS hour, eventType, eventName, readOnly, projectID,
        srcASCountryCode AS country, sourceTTL, anyLast(projectName) AS pn, count() AS n
    FROM {{.Database}}.openai_audit_events
    WHERE (workspaceID, sourceID, toStartOfHour(eventTime)) IN (SELECT workspaceID, sourceID, hour FROM dirty)
    GROUP BY workspaceID, sourceID, hour, eventType, eventName, readOnly, projectID, country, sourceTTL
    UNION ALL
    SELECT workspaceID, sourceID, hour, eventType, eventName, readOnly, projectID, country, sourceTTL,
        '' AS pn, toUInt64(0) AS n
    FROM {{.Database}}_rollups.openai_audit_counts_1h FINAL
    WHERE (workspaceID, sourceID, hour) IN (SELECT workspaceID, sourceID, hour FROM dirty) AND events > 0
)
GROUP BY workspaceID, sourceID, hour, eventType, eventName, readOnly, projectID, country, sourceTTL;

-- What panels read: the newest count of each key, zero counts left out.
CREATE VIEW IF NOT EXISTS {{.Database}}.openai_audit_counts{{.OnCluster}}
AS SELECT workspaceID, sourceID, hour, eventType, eventName, readOnly, projectID, country, projectName, events
FROM {{.Database}}_rollups.openai_audit_counts_1h FINAL
WHERE events > 0
SETTINGS do_not_merge_across_partitions_select_final = 1;
