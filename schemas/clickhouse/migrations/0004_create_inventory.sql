-- 0004: the organization inventory (docs/inventory.md): what exists in each
-- source's organization, as the poller's snapshots saw it, kept as change
-- rows, not as full snapshots.
--
-- openai_inventory_changes: one row per record of openai-audit-inventory
-- with kind != 'snapshot' (pkg/inventory.Record): an object that appeared or
-- changed (op 'upsert', the object as the API returned it), disappeared
-- (op 'delete', object 'null'), or was written again by the daily baseline
-- (op 'upsert', baseline true). A replay of the topic (or a retried insert
-- older than the insert-deduplication window) repeats rows with the same
-- sorting key, which the ReplacingMergeTree collapses: a snapshot writes an
-- object at most once, so (workspace, source, kind, object, snapshotAt)
-- identifies a row. Read it FINAL, or through the views below, which are
-- indifferent to copies (argMax over identical rows). Monthly partitions by
-- snapshotAt; no TTL (change rows are few: docs/inventory.md has the sizes).
--
-- openai_inventory_snapshots: one row per snapshot record (kind
-- 'snapshot'): when it ran, whether it was a baseline, whether every
-- listing succeeded, the objects per kind listed in full (counts) and the
-- failed kinds with their error. A kind missing from counts was not
-- compared by that snapshot: its objects keep their previous rows.
CREATE TABLE IF NOT EXISTS {{.Database}}.{{local "openai_inventory_changes"}}{{.OnCluster}}
(
    workspaceID String,
    sourceID String,
    snapshotID String,
    snapshotAt DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    objectID String,
    projectID String,
    op Enum8('upsert' = 1, 'delete' = 2),
    baseline Bool,
    hash String,
    object String CODEC(ZSTD(1)),
    receivedAt DateTime64(3, 'UTC')
)
ENGINE = {{engine "ReplacingMergeTree" "openai_inventory_changes"}}
PARTITION BY toYYYYMM(snapshotAt)
ORDER BY (workspaceID, sourceID, kind, objectID, snapshotAt)
SETTINGS {{if .Cluster}}replicated_deduplication_window = 10000{{else}}non_replicated_deduplication_window = 10000{{end}};

CREATE TABLE IF NOT EXISTS {{.Database}}.{{local "openai_inventory_snapshots"}}{{.OnCluster}}
(
    workspaceID String,
    sourceID String,
    snapshotID String,
    snapshotAt DateTime64(3, 'UTC'),
    finishedAt DateTime64(3, 'UTC'),
    baseline Bool,
    complete Bool,
    counts Map(String, UInt32),
    failed Map(String, String),
    requests UInt32,
    receivedAt DateTime64(3, 'UTC')
)
ENGINE = {{engine "ReplacingMergeTree" "openai_inventory_snapshots"}}
PARTITION BY toYYYYMM(snapshotAt)
ORDER BY (workspaceID, sourceID, snapshotAt)
SETTINGS {{if .Cluster}}replicated_deduplication_window = 10000{{else}}non_replicated_deduplication_window = 10000{{end}};
{{- if .Cluster}}

-- Cluster mode: the tables the loader inserts into and users query. A
-- source's whole history lives on one shard, so its copies collapse there
-- and the per-object windows of the views and rules see every row.
CREATE TABLE IF NOT EXISTS {{.Database}}.openai_inventory_changes{{.OnCluster}}
AS {{.Database}}.{{local "openai_inventory_changes"}}
ENGINE = Distributed({{quote .Cluster}}, {{quote .Database}}, {{quote (local "openai_inventory_changes")}}, cityHash64(workspaceID, sourceID));

CREATE TABLE IF NOT EXISTS {{.Database}}.openai_inventory_snapshots{{.OnCluster}}
AS {{.Database}}.{{local "openai_inventory_snapshots"}}
ENGINE = Distributed({{quote .Cluster}}, {{quote .Database}}, {{quote (local "openai_inventory_snapshots")}}, cityHash64(workspaceID, sourceID));
{{- end}}

-- openai_inventory_now: the inventory now, one row per object that exists:
-- the latest row of each object (workspace, source, kind, objectID) unless
-- it is a delete. seenAt is the snapshot of that row (at most a day old for
-- a live object: every baseline writes it again), firstSeenAt the first
-- snapshot that ever listed it. Self-healing: an object whose latest row
-- is older than its kind's latest baseline (a baseline snapshot that
-- listed the kind in full, at least an hour ago so that all its rows are
-- loaded) was not in that baseline, so it is gone even if its delete was
-- never written (a poller that lost its state starts over with a baseline).
CREATE VIEW IF NOT EXISTS {{.Database}}.openai_inventory_now{{.OnCluster}}
AS SELECT
    l.workspaceID AS workspaceID, l.sourceID AS sourceID, l.kind AS kind, l.objectID AS objectID,
    l.projectID AS projectID, l.object AS object, l.hash AS hash, l.seenAt AS seenAt, l.firstSeenAt AS firstSeenAt
FROM
(
    SELECT workspaceID, sourceID, kind, objectID,
        argMax(op, snapshotAt) AS lastOp, argMax(object, snapshotAt) AS object, argMax(hash, snapshotAt) AS hash,
        argMax(projectID, snapshotAt) AS projectID, max(snapshotAt) AS seenAt, min(snapshotAt) AS firstSeenAt
    FROM {{.Database}}.openai_inventory_changes
    GROUP BY workspaceID, sourceID, kind, objectID
) AS l
LEFT JOIN
(
    SELECT workspaceID, sourceID, kind, max(snapshotAt) AS baselineAt
    FROM {{.Database}}.openai_inventory_snapshots
    ARRAY JOIN mapKeys(counts) AS kind
    WHERE baseline AND snapshotAt <= now() - INTERVAL 1 HOUR
    GROUP BY workspaceID, sourceID, kind
) AS b ON l.workspaceID = b.workspaceID AND l.sourceID = b.sourceID AND l.kind = b.kind
WHERE l.lastOp = 'upsert' AND l.seenAt >= b.baselineAt;

-- openai_inventory_keys: the API keys now (admin keys and project keys),
-- with the fields posture rules and dashboards read: times as DateTime
-- (epoch 0 when the API has none: never used, no expiry) and the owner
-- (a user or a service account; owner_project_access for project keys).
CREATE VIEW IF NOT EXISTS {{.Database}}.openai_inventory_keys{{.OnCluster}}
AS SELECT
    workspaceID, sourceID, kind, objectID, projectID, seenAt, firstSeenAt,
    JSONExtractString(object, 'name') AS name,
    toDateTime(JSONExtractUInt(object, 'created_at'), 'UTC') AS createdAt,
    toDateTime(JSONExtractUInt(object, 'last_used_at'), 'UTC') AS lastUsedAt,
    toDateTime(JSONExtractUInt(object, 'expires_at'), 'UTC') AS expiresAt,
    JSONExtractString(object, 'owner', 'type') AS ownerType,
    multiIf(kind = 'admin_api_key', JSONExtractString(object, 'owner', 'id'),
            JSONExtractString(object, 'owner', 'type') = 'service_account', JSONExtractString(object, 'owner', 'service_account', 'id'),
            JSONExtractString(object, 'owner', 'user', 'id')) AS ownerID,
    multiIf(kind = 'admin_api_key', JSONExtractString(object, 'owner', 'name'),
            JSONExtractString(object, 'owner', 'type') = 'service_account', JSONExtractString(object, 'owner', 'service_account', 'name'),
            JSONExtractString(object, 'owner', 'user', 'email')) AS ownerName,
    JSONExtractString(object, 'owner_project_access') AS ownerProjectAccess
FROM {{.Database}}.openai_inventory_now
WHERE kind IN ('admin_api_key', 'project_api_key');
