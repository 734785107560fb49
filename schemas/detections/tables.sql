-- The objects every detection rule shares, in the detections database
-- (Atomic on a single node, Replicated in cluster mode: refreshable
-- materialized views need one of the two). Rendered by
-- pkg/detections with .DB (the detections database, quoted) and the
-- function engine (ReplacingMergeTree(args), or its Replicated variant in
-- cluster mode, whose path and replica the Replicated database supplies).
-- Every statement is idempotent: the installer runs them at every start.

-- Findings: one row per (rule, workspace, source, entity, windowStart).
-- The rule views insert a finding only if its key is not in the table yet
-- (so detectedAt is the first detection and overlapping refreshes add
-- nothing); the replacing engine is the safety net for concurrent writers.
CREATE TABLE IF NOT EXISTS {{.DB}}.openai_audit_detections
(
    rule LowCardinality(String),
    severity Enum8('INFO' = 1, 'LOW' = 2, 'MEDIUM' = 3, 'HIGH' = 4, 'CRITICAL' = 5),
    workspaceID String,
    sourceID String,
    entity String,
    windowStart DateTime,
    windowEnd DateTime,
    firstEventTime DateTime,
    lastEventTime DateTime,
    eventIDs Array(String),
    details Map(String, String),
    detectedAt DateTime DEFAULT now()
)
ENGINE = {{engine "ReplacingMergeTree"}}
PARTITION BY toYYYYMM(windowStart)
ORDER BY (rule, workspaceID, sourceID, entity, windowStart);

-- The installed rules: metadata, knob defaults and the checksum of the view
-- each was installed from. Owned by the installer (rewritten at every
-- start); join it to findings for titles and MITRE techniques.
CREATE TABLE IF NOT EXISTS {{.DB}}.detection_rules
(
    rule String,
    title String,
    severity Enum8('INFO' = 1, 'LOW' = 2, 'MEDIUM' = 3, 'HIGH' = 4, 'CRITICAL' = 5),
    mitreTechniqueID String,
    mitreTechniqueName String,
    description String,
    defaults Map(String, String),
    checksum String,
    installedAt DateTime64(3) DEFAULT now64(3)
)
ENGINE = {{engine "ReplacingMergeTree" "installedAt"}}
ORDER BY rule;

-- Your overrides: the newest row per (rule, name) wins; an empty value
-- restores the default. Never written by the installer.
--   INSERT INTO detection_settings (rule, name, value) VALUES ('credential_stuffing', 'min_ips', '3');
--   INSERT INTO detection_settings (rule, name, value) VALUES ('impossible_travel', 'enabled', 'false');
CREATE TABLE IF NOT EXISTS {{.DB}}.detection_settings
(
    rule String,
    name String,
    value String,
    updatedAt DateTime64(3) DEFAULT now64(3)
)
ENGINE = {{engine "ReplacingMergeTree" "updatedAt"}}
ORDER BY (rule, name);

-- The effective value of every knob of every installed rule: the newest
-- non-empty override, else the rule's default. The rule views read their
-- knobs here at every refresh.
CREATE OR REPLACE VIEW {{.DB}}.detection_parameters AS
SELECT
    d.rule AS rule,
    d.name AS name,
    if(o.value != '', o.value, d.default) AS value,
    d.default AS default,
    o.value != '' AS overridden
FROM
(
    SELECT rule, kv.1 AS name, kv.2 AS default
    FROM {{.DB}}.detection_rules FINAL
    ARRAY JOIN CAST(defaults, 'Array(Tuple(String, String))') AS kv
) AS d
LEFT JOIN
(
    SELECT rule, name, argMax(value, updatedAt) AS value
    FROM {{.DB}}.detection_settings
    GROUP BY rule, name
) AS o ON d.rule = o.rule AND d.name = o.name;
