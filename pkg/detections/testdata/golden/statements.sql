CREATE DATABASE IF NOT EXISTS `default_detections` ENGINE = Atomic;

CREATE TABLE IF NOT EXISTS `default_detections`.openai_audit_detections
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
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(windowStart)
ORDER BY (rule, workspaceID, sourceID, entity, windowStart);

CREATE TABLE IF NOT EXISTS `default_detections`.detection_rules
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
ENGINE = ReplacingMergeTree(installedAt)
ORDER BY rule;

CREATE TABLE IF NOT EXISTS `default_detections`.detection_settings
(
    rule String,
    name String,
    value String,
    updatedAt DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updatedAt)
ORDER BY (rule, name);

CREATE OR REPLACE VIEW `default_detections`.detection_parameters AS
SELECT
    d.rule AS rule,
    d.name AS name,
    if(o.value != '', o.value, d.default) AS value,
    d.default AS default,
    o.value != '' AS overridden
FROM
(
    SELECT rule, kv.1 AS name, kv.2 AS default
    FROM `default_detections`.detection_rules FINAL
    ARRAY JOIN CAST(defaults, 'Array(Tuple(String, String))') AS kv
) AS d
LEFT JOIN
(
    SELECT rule, name, argMax(value, updatedAt) AS value
    FROM `default_detections`.detection_settings
    GROUP BY rule, name
) AS o ON d.rule = o.rule AND d.name = o.name;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_admin_api_key_created`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'admin_api_key_created' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(eventName = 'tenant.admin_api_key.created', 'HIGH', 'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(keyID != '', keyID, eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map('event', eventName, 'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)')) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventName,
        eventTime,
        eventID,
        actorUserEmail,
        serviceAccountID,
        apiKeyID,
        JSONExtractString(rawLog, eventName, 'id') AS keyID
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName IN ('tenant.admin_api_key.created', 'tenant.admin_api_key.updated') AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'admin_api_key_created' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'admin_api_key_created' AND name = 'lookback_minutes')))
)
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'admin_api_key_created' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'admin_api_key_created')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_admin_api_key_long_lived`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'admin_api_key_long_lived' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(expiresAt = 0, 'MEDIUM', 'LOW') AS severity,
    workspaceID,
    sourceID,
    objectID AS entity,
    createdAt AS windowStart,
    toDateTime(seenAt) AS windowEnd,
    createdAt AS firstEventTime,
    toDateTime(seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('name', name, 'owner', ownerName, 'created_at', toString(createdAt),
        'expires_at', if(expiresAt = 0, 'never', toString(expiresAt))) AS details
FROM `default`.`openai_inventory_keys`
WHERE kind = 'admin_api_key'
    AND (expiresAt = 0 OR expiresAt > now() + toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'admin_api_key_long_lived' AND name = 'max_lifetime_days')))
    AND (workspaceID, sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'admin_api_key_long_lived' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'admin_api_key_long_lived' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'admin_api_key_long_lived')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_api_key_elevated_scopes`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'api_key_elevated_scopes' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'scopes', arrayStringConcat(scopes, ','),
        'elevated_scopes', arrayStringConcat(elevated, ','),
        'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)'),
        'project_id', projectID
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventName,
        eventTime,
        eventID,
        projectID,
        actorUserEmail,
        serviceAccountID,
        apiKeyID,
        JSONExtractString(rawLog, eventName, 'id') AS entity,
        arrayDistinct(arrayConcat(
            JSONExtract(rawLog, eventName, 'data', 'scopes', 'Array(String)'),
            JSONExtract(rawLog, eventName, 'changes_requested', 'scopes', 'Array(String)'))) AS scopes,
        arrayFilter(s -> has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_elevated_scopes' AND name = 'elevated_scopes'), lower(s)), scopes) AS elevated
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName IN ('api_key.created', 'api_key.updated') AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_elevated_scopes' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_elevated_scopes' AND name = 'lookback_minutes')))
)
WHERE notEmpty(elevated)
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_elevated_scopes' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'api_key_elevated_scopes')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_api_key_orphaned`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'api_key_orphaned' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    k.workspaceID AS workspaceID,
    k.sourceID AS sourceID,
    k.objectID AS entity,
    k.createdAt AS windowStart,
    toDateTime(k.seenAt) AS windowEnd,
    k.createdAt AS firstEventTime,
    toDateTime(k.seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('name', k.name, 'project_id', k.projectID, 'owner_type', k.ownerType, 'owner_id', k.ownerID, 'owner', k.ownerName,
        'owner_project_access', k.ownerProjectAccess,
        'reason', multiIf(k.ownerProjectAccess = 'inactive', 'owner_project_access inactive',
                          k.ownerType = 'service_account', 'service account gone', 'user gone')) AS details
FROM `default`.`openai_inventory_keys` AS k
LEFT JOIN
(
    SELECT workspaceID, sourceID, if(kind = 'user', '', projectID) AS projectID, objectID, 1 AS present
    FROM `default`.`openai_inventory_now`
    WHERE kind IN ('user', 'project_service_account')
) AS o ON o.workspaceID = k.workspaceID AND o.sourceID = k.sourceID AND o.objectID = k.ownerID
    AND o.projectID = if(k.ownerType = 'service_account', k.projectID, '')
WHERE k.kind = 'project_api_key' AND (k.ownerProjectAccess = 'inactive' OR o.present = 0)
    AND (k.workspaceID, k.sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_orphaned' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_orphaned' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'api_key_orphaned')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_api_key_unused`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'api_key_unused' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(kind = 'admin_api_key', 'MEDIUM', 'LOW') AS severity,
    workspaceID,
    sourceID,
    objectID AS entity,
    greatest(lastUsedAt, createdAt) AS windowStart,
    toDateTime(seenAt) AS windowEnd,
    windowStart AS firstEventTime,
    toDateTime(seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('kind', kind, 'name', name, 'project_id', projectID, 'owner', ownerName,
        'last_used_at', if(lastUsedAt = 0, 'never', toString(lastUsedAt)),
        'days_unused', toString(dateDiff('day', windowStart, now()))) AS details
FROM `default`.`openai_inventory_keys`
WHERE greatest(lastUsedAt, createdAt) < now() - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_unused' AND name = 'unused_days'))
    AND (workspaceID, sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_unused' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'api_key_unused' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'api_key_unused')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_audit_gap`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'audit_gap' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
WITH
    [
        ('project_api_key', 'appeared', ['api_key.created']),
        ('project_api_key', 'disappeared', ['api_key.deleted', 'project.archived', 'project.deleted']),
        ('project_api_key', 'changed', ['api_key.updated']),
        ('admin_api_key', 'appeared', ['tenant.admin_api_key.created']),
        ('admin_api_key', 'disappeared', ['tenant.admin_api_key.deleted']),
        ('admin_api_key', 'changed', ['tenant.admin_api_key.updated']),
        ('user', 'appeared', ['user.added', 'invite.accepted']),
        ('user', 'disappeared', ['user.deleted']),
        ('user', 'changed', ['user.updated']),
        ('project', 'appeared', ['project.created']),
        ('project', 'disappeared', ['project.deleted', 'project.archived']),
        ('project', 'changed', ['project.updated', 'project.archived']),
        ('project_service_account', 'appeared', ['service_account.created']),
        ('project_service_account', 'disappeared', ['service_account.deleted', 'project.archived', 'project.deleted']),
        ('project_service_account', 'changed', ['service_account.updated']),
        ('invite', 'appeared', ['invite.sent']),
        ('invite', 'disappeared', ['invite.deleted', 'invite.accepted']),
        ('certificate', 'appeared', ['certificate.created']),
        ('certificate', 'disappeared', ['certificate.deleted']),
        ('certificate', 'changed', ['certificate.updated', 'certificates.activated', 'certificates.deactivated']),
        ('group', 'appeared', ['group.created']),
        ('group', 'disappeared', ['group.deleted']),
        ('group', 'changed', ['group.updated']),
        ('role', 'appeared', ['role.created']),
        ('role', 'disappeared', ['role.deleted']),
        ('role', 'changed', ['role.updated']),
        ('role_assignment', 'appeared', ['role.assignment.created']),
        ('role_assignment', 'disappeared', ['role.assignment.deleted', 'role.deleted', 'user.deleted', 'group.deleted']),
        ('project_rate_limit', 'appeared', ['rate_limit.updated']),
        ('project_rate_limit', 'disappeared', ['rate_limit.deleted', 'project.archived', 'project.deleted']),
        ('project_rate_limit', 'changed', ['rate_limit.updated'])
    ] AS explained_by,
    (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'slack_minutes') * 60 AS slack
SELECT
    if(c.kind IN ('project_api_key', 'admin_api_key', 'user', 'project_service_account', 'certificate'), 'HIGH', 'MEDIUM') AS severity,
    c.workspaceID AS workspaceID,
    c.sourceID AS sourceID,
    concat(c.kind, '/', c.objectID) AS entity,
    toDateTime(c.windowStart) AS windowStart,
    toDateTime(c.windowEnd) AS windowEnd,
    toDateTime(c.windowStart) AS firstEventTime,
    toDateTime(c.windowEnd) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('kind', c.kind, 'object_id', c.objectID, 'project_id', c.projectID, 'change', c.change,
        'fields', arrayStringConcat(c.fields, ','), 'expected_events', arrayStringConcat(c.names, ','),
        'snapshot_id', c.snapshotID, 'previous_snapshot_at', toString(c.windowStart), 'snapshot_at', toString(c.windowEnd)) AS details
FROM
(
    SELECT workspaceID, sourceID, kind, objectID, projectID, snapshotID, windowStart, windowEnd, change, fields, names,
        multiIf(kind = 'role_assignment', splitByChar('/', objectID),
                kind = 'project_rate_limit', [splitByChar('/', objectID)[2]], [objectID]) AS matchIDs
    FROM
    (
        SELECT h.workspaceID AS workspaceID, h.sourceID AS sourceID, h.kind AS kind, h.objectID AS objectID, h.projectID AS projectID,
            h.snapshotID AS snapshotID, s.prevAt AS windowStart, h.snapshotAt AS windowEnd,
            multiIf(h.op = 'delete' AND h.prevOp != 'delete', 'disappeared',
                    h.op = 'upsert' AND h.prevOp IN ('', 'delete'), 'appeared',
                    h.op = 'upsert' AND h.hash != h.prevHash, 'changed', '') AS change,
            if(change = 'changed',
               arrayFilter(f -> JSONExtractRaw(h.object, f) != JSONExtractRaw(h.prevObject, f),
                   arrayMap(x -> substring(x, length(h.kind) + 2), arrayFilter(x -> startsWith(x, concat(h.kind, '.')), (SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'watched_fields')))),
               CAST([], 'Array(String)')) AS fields,
            arrayFilter(m -> m.1 = h.kind AND m.2 = change, explained_by)[1].3 AS names
        FROM
        (
            SELECT workspaceID, sourceID, kind, objectID, projectID, snapshotID, snapshotAt, toString(op) AS op, hash, object,
                lagInFrame(toString(op), 1, '') OVER w AS prevOp,
                lagInFrame(hash, 1, '') OVER w AS prevHash,
                lagInFrame(object, 1, '') OVER w AS prevObject
            FROM `default`.`openai_inventory_changes` FINAL
            
            WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'lookback_minutes') + (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'settle_minutes')) - INTERVAL 2 DAY
            WINDOW w AS (PARTITION BY workspaceID, sourceID, kind, objectID ORDER BY snapshotAt ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        ) AS h
        INNER JOIN
        (
            
            
            SELECT workspaceID, sourceID, kind, snapshotAt,
                lagInFrame(snapshotAt, 1, toDateTime64(0, 3, 'UTC')) OVER (PARTITION BY workspaceID, sourceID, kind ORDER BY snapshotAt ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prevAt
            FROM `default`.`openai_inventory_snapshots` FINAL
            ARRAY JOIN mapKeys(counts) AS kind
            WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'lookback_minutes') + (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'settle_minutes')) - INTERVAL 2 DAY
        ) AS s ON s.workspaceID = h.workspaceID AND s.sourceID = h.sourceID AND s.kind = h.kind AND s.snapshotAt = h.snapshotAt
        WHERE h.snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'lookback_minutes') + (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'settle_minutes'))
            AND h.snapshotAt <= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'settle_minutes'))
            AND s.prevAt > toDateTime64(0, 3, 'UTC')
    )
    WHERE change != '' AND notEmpty(names) AND (change != 'changed' OR notEmpty(fields))
) AS c
LEFT JOIN
(
    SELECT workspaceID, sourceID, eventName, eventTime,
        arrayFilter(x -> x != '', arrayConcat(
            [JSONExtractString(rawLog, eventName, 'id'), JSONExtractString(rawLog, eventName, 'principal_id')],
            arrayMap(x -> x.1, JSONExtract(rawLog, eventName, 'certificates', 'Array(Tuple(id String))')))) AS ids
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'lookback_minutes') + (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'settle_minutes')) - INTERVAL 2 DAY
        AND has(arrayFlatten(arrayMap(m -> m.3, explained_by)), eventName)
) AS e ON e.workspaceID = c.workspaceID AND e.sourceID = c.sourceID
GROUP BY c.workspaceID, c.sourceID, c.kind, c.objectID, c.projectID, c.snapshotID, c.windowStart, c.windowEnd, c.change, c.fields, c.names, c.matchIDs
HAVING countIf(e.eventTime >= toDateTime(c.windowStart) - slack AND e.eventTime <= toDateTime(c.windowEnd) + slack AND has(c.names, e.eventName)
    AND (hasAny(e.ids, c.matchIDs) OR (c.change = 'disappeared' AND e.eventName IN ('project.archived', 'project.deleted') AND has(e.ids, c.projectID)))) = 0
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'audit_gap' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'audit_gap')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_brute_force_success`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'brute_force_success' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'brute_force_success' AND name = 'window_minutes')) AS windowStart,
    eventTime AS windowEnd,
    arrayMin(arrayMap(e -> e.1, failures)) AS firstEventTime,
    eventTime AS lastEventTime,
    arrayPushBack(arrayMap(e -> e.2, arraySort(failures)), eventID) AS eventIDs,
    map(
        'failures', toString(length(failures)),
        'failure_ips', arrayStringConcat(arraySort(arrayDistinct(arrayMap(e -> e.3, failures))), ','),
        'success_ip', srcIP,
        'success_country', srcASCountryCode,
        'success_ip_among_failures', if(has(arrayMap(e -> e.3, failures), srcIP), 'true', 'false')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        entity,
        eventTime,
        eventID,
        srcIP,
        srcASCountryCode,
        arrayMax(arrayPushFront(arrayFilter(t -> t < eventTime, windowSuccesses), toDateTime(0))) AS previousSuccess,
        arrayFilter(e -> e.1 > previousSuccess AND e.1 < eventTime, windowFailures) AS failures
    FROM
    (
        SELECT
            workspaceID,
            sourceID,
            lower(actorUserEmail) AS entity,
            eventName,
            eventTime,
            eventID,
            srcIP,
            srcASCountryCode,
            groupArrayIf((eventTime, eventID, srcIP), eventName = 'login.failed') OVER w AS windowFailures,
            groupArrayIf(eventTime, eventName = 'login.succeeded') OVER w AS windowSuccesses
        FROM `default`.`openai_audit_logs` FINAL
        WHERE eventName IN ('login.failed', 'login.succeeded') AND actorUserEmail != '' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'brute_force_success' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'brute_force_success' AND name = 'lookback_minutes')))
        WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                     RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'brute_force_success' AND name = 'window_minutes') * 60 PRECEDING AND CURRENT ROW)
    )
    WHERE eventName = 'login.succeeded'
)
WHERE length(failures) >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'brute_force_success' AND name = 'min_failures')
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'brute_force_success' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'brute_force_success')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_certificate_changed`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'certificate_changed' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(eventName IN ('certificate.created', 'certificate.updated'), 'MEDIUM', 'HIGH') AS severity,
    workspaceID,
    sourceID,
    if(cert.1 != '', cert.1, eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map('event', eventName, 'name', cert.2, 'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)')) AS details
FROM `default`.`openai_audit_logs` FINAL
LEFT ARRAY JOIN
    if(startsWith(eventName, 'certificates.'),
        JSONExtract(rawLog, eventName, 'certificates', 'Array(Tuple(id String, name String))'),
        [CAST((JSONExtractString(rawLog, eventName, 'id'), JSONExtractString(rawLog, eventName, 'name')), 'Tuple(id String, name String)')]) AS cert
WHERE eventName IN ('certificate.created', 'certificate.updated', 'certificate.deleted',
                    'certificates.activated', 'certificates.deactivated')
    AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'certificate_changed' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'certificate_changed' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'certificate_changed' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'certificate_changed')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_certificate_expiring`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'certificate_expiring' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(expiresAt <= now() AND active, 'HIGH', 'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    objectID AS entity,
    expiresAt AS windowStart,
    expiresAt AS windowEnd,
    toDateTime(seenAt) AS firstEventTime,
    toDateTime(seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('name', JSONExtractString(object, 'name'), 'active', toString(active), 'expires_at', toString(expiresAt),
        'days_left', toString(dateDiff('day', now(), expiresAt))) AS details
FROM
(
    SELECT workspaceID, sourceID, objectID, object, seenAt,
        toDateTime(JSONExtractUInt(object, 'certificate_details', 'expires_at'), 'UTC') AS expiresAt,
        JSONExtractBool(object, 'active') AS active
    FROM `default`.`openai_inventory_now`
    WHERE kind = 'certificate' AND (workspaceID, sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'certificate_expiring' AND name = 'lookback_minutes')))
)
WHERE expiresAt != 0 AND expiresAt < now() + toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'certificate_expiring' AND name = 'expiry_days'))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'certificate_expiring' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'certificate_expiring')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_credential_creation_after_dormancy`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'credential_creation_after_dormancy' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'LOW' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'first_seen', toString(firstSeen),
        'previous_creation', if(previousCreation = toDateTime(0), 'none', toString(previousCreation))
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS entity,
        eventName,
        eventTime,
        receivedAt,
        eventID,
        has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'event_names'), eventName) AS isCreation,
        min(eventTime) OVER actorHistory AS firstSeen,
        maxIf(eventTime, isCreation) OVER before AS previousCreation
    FROM `default`.`openai_audit_logs` FINAL
    WHERE multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') IN (
            SELECT multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') FROM `default`.`openai_audit_logs` WHERE has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'event_names'), eventName) AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'lookback_minutes')))
        )
        AND eventTime >= (
            SELECT if(count() = 0, now(), min(eventTime))
            FROM `default`.`openai_audit_logs`
            WHERE has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'event_names'), eventName) AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'lookback_minutes')))
        ) - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'history_days'))
    WINDOW
        actorHistory AS (PARTITION BY workspaceID, sourceID, entity),
        before AS (PARTITION BY workspaceID, sourceID, entity ORDER BY eventTime
                   RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
WHERE isCreation AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'lookback_minutes')))
    AND previousCreation < eventTime - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'quiet_days'))
    AND firstSeen < eventTime - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'quiet_days'))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_after_dormancy' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'credential_creation_after_dormancy')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_credential_creation_burst`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'credential_creation_burst' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'MEDIUM' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalHour((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'window_hours')), 'UTC') AS windowStart,
    windowStart + toIntervalHour((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'window_hours')) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arraySort(groupUniqArrayArray(windowEvents)) AS events,
    arrayMap(e -> e.2, events) AS eventIDs,
    map(
        'creations', toString(length(events)),
        'by_type', arrayStringConcat(arrayMap(n -> n || '=' || toString(countEqual(arrayMap(e -> e.3, events), n)),
            arraySort(arrayDistinct(arrayMap(e -> e.3, events)))), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS entity,
        eventTime,
        groupArray((eventTime, eventID, eventName)) OVER w AS windowEvents,
        count() OVER w AS creations,
        min(eventTime) OVER w AS windowFirst
    FROM `default`.`openai_audit_logs` FINAL
    WHERE has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'event_names'), eventName) AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'lookback_minutes')))
    WINDOW w AS (PARTITION BY workspaceID, sourceID, entity ORDER BY eventTime
                 RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'window_hours') * 3600 PRECEDING AND CURRENT ROW)
)
WHERE creations >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'min_creations')
GROUP BY workspaceID, sourceID, entity, windowStart
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_creation_burst' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'credential_creation_burst')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_credential_stuffing`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'credential_stuffing' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'window_minutes')), 'UTC') AS windowStart,
    windowStart + toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'window_minutes')) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arrayMap(e -> e.2, arraySort(groupUniqArrayArray(windowEvents))) AS eventIDs,
    map(
        'distinct_ips', toString(max(ips)),
        'failures', toString(length(eventIDs)),
        'ips', arrayStringConcat(arraySort(groupUniqArrayArray(windowIPs)), ','),
        'countries', arrayStringConcat(arraySort(groupUniqArrayArray(windowCountries)), ','),
        'error_codes', arrayStringConcat(arraySort(groupUniqArrayArray(windowCodes)), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        lower(actorUserEmail) AS entity,
        eventTime,
        uniqExactIf(srcIP, srcIP != '') OVER w AS ips,
        groupUniqArrayIf(srcIP, srcIP != '') OVER w AS windowIPs,
        groupUniqArrayIf(srcASCountryCode, srcASCountryCode != '') OVER w AS windowCountries,
        groupUniqArray(JSONExtractString(rawLog, 'login.failed', 'error_code')) OVER w AS windowCodes,
        groupArray((eventTime, eventID)) OVER w AS windowEvents,
        min(eventTime) OVER w AS windowFirst
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName = 'login.failed' AND actorUserEmail != '' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'lookback_minutes')))
    WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                 RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'window_minutes') * 60 PRECEDING AND CURRENT ROW)
)
WHERE ips >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'min_ips')
GROUP BY workspaceID, sourceID, entity, windowStart
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'credential_stuffing' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'credential_stuffing')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_deleted_principal_key_activity`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'deleted_principal_key_activity' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    a.workspaceID AS workspaceID,
    a.sourceID AS sourceID,
    a.apiKeyID AS entity,
    toStartOfDay(a.eventTime, 'UTC') AS windowStart,
    windowStart + toIntervalDay(1) AS windowEnd,
    min(a.eventTime) AS firstEventTime,
    max(a.eventTime) AS lastEventTime,
    arrayConcat([any(d.deletionID)], arrayMap(e -> e.2, arraySort(groupUniqArray((a.eventTime, a.eventID))))) AS eventIDs,
    map(
        'deleted', any(d.kind),
        'deleted_id', any(d.principal),
        'deleted_at', toString(any(d.deletedAt)),
        'key_user', any(a.actorUserEmail),
        'events', arrayStringConcat(arraySort(groupUniqArray(a.eventName)), ',')
    ) AS details
FROM
(
    SELECT workspaceID, sourceID, eventTime, eventID, eventName, apiKeyID, actorUserEmail, candidate.1 AS kind, candidate.2 AS principal
    FROM `default`.`openai_audit_logs` FINAL
    ARRAY JOIN [('user.deleted', actorUserID), ('service_account.deleted', serviceAccountID), ('api_key.deleted', apiKeyID)] AS candidate
    WHERE actorType = 'api_key' AND apiKeyID != '' AND candidate.2 != '' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'deleted_principal_key_activity' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'deleted_principal_key_activity' AND name = 'lookback_minutes')))
) AS a
INNER JOIN
(
    SELECT workspaceID, sourceID, eventName AS kind, JSONExtractString(rawLog, eventName, 'id') AS principal,
        min(eventTime) AS deletedAt, argMin(eventID, eventTime) AS deletionID
    FROM `default`.`openai_audit_logs`
    WHERE eventName IN ('user.deleted', 'service_account.deleted', 'api_key.deleted')
        AND eventTime >= now() - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'deleted_principal_key_activity' AND name = 'history_days'))
    GROUP BY workspaceID, sourceID, kind, principal
) AS d ON a.workspaceID = d.workspaceID AND a.sourceID = d.sourceID AND a.kind = d.kind AND a.principal = d.principal
WHERE a.eventTime > d.deletedAt
GROUP BY workspaceID, sourceID, entity, windowStart
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'deleted_principal_key_activity' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'deleted_principal_key_activity')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_impossible_travel`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'impossible_travel' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    previousTime AS windowStart,
    eventTime AS windowEnd,
    previousTime AS firstEventTime,
    eventTime AS lastEventTime,
    [previousID, eventID] AS eventIDs,
    map(
        'from_ip', previousIP,
        'from_location', previousPlace,
        'to_ip', srcIP,
        'to_location', place,
        'distance_km', toString(round(distanceKm)),
        'seconds', toString(seconds),
        'speed_kmh', if(seconds = 0, 'inf', toString(round(distanceKm / seconds * 3600)))
    ) AS details
FROM
(
    SELECT
        *,
        greatCircleDistance(previousLon, previousLat, srcLongitude, srcLatitude) / 1000 AS distanceKm,
        dateDiff('second', previousTime, eventTime) AS seconds
    FROM
    (
        SELECT
            workspaceID,
            sourceID,
            lower(actorUserEmail) AS entity,
            eventTime,
            receivedAt,
            eventID,
            srcIP,
            srcLatitude,
            srcLongitude,
            concat(srcCity, if(srcCity != '', ', ', ''), srcASCountryCode) AS place,
            lagInFrame(eventTime) OVER w AS previousTime,
            lagInFrame(eventID) OVER w AS previousID,
            lagInFrame(srcIP) OVER w AS previousIP,
            lagInFrame(srcLatitude) OVER w AS previousLat,
            lagInFrame(srcLongitude) OVER w AS previousLon,
            lagInFrame(place) OVER w AS previousPlace
        FROM `default`.`openai_audit_logs` FINAL
        WHERE actorType = 'session' AND actorUserEmail != '' AND NOT (srcLatitude = 0 AND srcLongitude = 0)
            AND eventName NOT IN ('login.failed', 'logout.failed')
            
            
            AND eventTime >= (
                SELECT if(count() = 0, now(), min(eventTime))
                FROM `default`.`openai_audit_logs`
                WHERE actorType = 'session' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'lookback_minutes')))
            ) - toIntervalSecond(toUInt32(least(20038 / (SELECT toFloat64(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'max_kmh'), 48) * 3600) + 3600)
        WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime, eventID
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
    WHERE previousID != '' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'lookback_minutes')))
)
WHERE distanceKm >= (SELECT toFloat64(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'min_distance_km')
    AND (seconds = 0 OR distanceKm / seconds * 3600 > (SELECT toFloat64(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'max_kmh'))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'impossible_travel' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'impossible_travel')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_invite_external_domain`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'invite_external_domain' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(i.role = 'owner', 'HIGH', 'MEDIUM') AS severity,
    i.workspaceID AS workspaceID,
    i.sourceID AS sourceID,
    i.invited AS entity,
    i.eventTime AS windowStart,
    i.eventTime AS windowEnd,
    i.eventTime AS firstEventTime,
    i.eventTime AS lastEventTime,
    [i.eventID] AS eventIDs,
    map('domain', i.domain, 'role', i.role, 'invited_by', i.invitedBy) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventTime,
        eventID,
        multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS invitedBy,
        lower(JSONExtractString(rawLog, 'invite.sent', 'data', 'email')) AS invited,
        splitByChar('@', invited)[-1] AS domain,
        JSONExtractString(rawLog, 'invite.sent', 'data', 'role') AS role
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName = 'invite.sent' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'lookback_minutes')))
) AS i
LEFT JOIN
(
    
    SELECT workspaceID, sourceID, lower(splitByChar('@', actorUserEmail)[-1]) AS domain, min(eventTime) AS since
    FROM `default`.`openai_audit_logs`
    WHERE actorUserEmail LIKE '%_@_%'
        AND eventTime >= (
            SELECT if(count() = 0, now(), min(eventTime))
            FROM `default`.`openai_audit_logs`
            WHERE eventName = 'invite.sent' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'lookback_minutes')))
        ) - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'history_days'))
    GROUP BY workspaceID, sourceID, domain
) AS m ON i.workspaceID = m.workspaceID AND i.sourceID = m.sourceID AND i.domain = m.domain
WHERE position(i.invited, '@') > 0
    AND NOT has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'allowed_domains'), i.domain)
    AND (m.since = toDateTime(0) OR m.since > i.eventTime)
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_external_domain' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'invite_external_domain')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_invite_pending_too_long`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'invite_pending_too_long' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'LOW' AS severity,
    workspaceID,
    sourceID,
    objectID AS entity,
    toDateTime(JSONExtractUInt(object, 'created_at'), 'UTC') AS windowStart,
    toDateTime(seenAt) AS windowEnd,
    windowStart AS firstEventTime,
    toDateTime(seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('email', JSONExtractString(object, 'email'), 'role', JSONExtractString(object, 'role'),
        'days_pending', toString(dateDiff('day', windowStart, now()))) AS details
FROM `default`.`openai_inventory_now`
WHERE kind = 'invite' AND JSONExtractString(object, 'status') = 'pending'
    AND JSONExtractUInt(object, 'created_at') < toUnixTimestamp(now() - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_pending_too_long' AND name = 'pending_days')))
    AND (workspaceID, sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_pending_too_long' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'invite_pending_too_long' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'invite_pending_too_long')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_ip_allowlist_changed`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'ip_allowlist_changed' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    multiIf(
        eventName IN ('ip_allowlist.deleted', 'ip_allowlist.config.deactivated'), 'CRITICAL',
        eventName = 'ip_allowlist.updated', 'HIGH',
        'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(target.1 != '', target.1, eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'name', target.2,
        'allowed_ips', arrayStringConcat(JSONExtract(rawLog, eventName, 'allowed_ips', 'Array(String)'), ','),
        'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)')
    ) AS details
FROM `default`.`openai_audit_logs` FINAL
LEFT ARRAY JOIN
    if(startsWith(eventName, 'ip_allowlist.config.'),
        JSONExtract(rawLog, eventName, 'configs', 'Array(Tuple(id String, name String))'),
        [CAST((JSONExtractString(rawLog, eventName, 'id'), JSONExtractString(rawLog, eventName, 'name')), 'Tuple(id String, name String)')]) AS target
WHERE eventName IN ('ip_allowlist.created', 'ip_allowlist.updated', 'ip_allowlist.deleted',
                    'ip_allowlist.config.activated', 'ip_allowlist.config.deactivated')
    AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'ip_allowlist_changed' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'ip_allowlist_changed' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'ip_allowlist_changed' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'ip_allowlist_changed')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_login_new_country`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'login_new_country' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'MEDIUM' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'country', country,
        'city', srcCity,
        'ip', srcIP,
        'baseline_countries', arrayStringConcat(arraySort(baselineCountries), ','),
        'baseline_logins', toString(baselineLogins)
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        lower(actorUserEmail) AS entity,
        srcASCountryCode AS country,
        srcCity,
        srcIP,
        eventTime,
        receivedAt,
        eventID,
        count() OVER baseline AS baselineLogins,
        groupUniqArray(srcASCountryCode) OVER baseline AS baselineCountries
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName = 'login.succeeded' AND actorUserEmail != '' AND srcASCountryCode != ''
        AND eventTime >= (
            SELECT if(count() = 0, now(), min(eventTime))
            FROM `default`.`openai_audit_logs`
            WHERE eventName = 'login.succeeded' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'lookback_minutes')))
        ) - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'baseline_days'))
    WINDOW baseline AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                        RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'baseline_days') * 86400 + 1 PRECEDING AND 1 PRECEDING)
)
WHERE (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'lookback_minutes')))
    AND baselineLogins >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'min_baseline_logins')
    AND NOT has(baselineCountries, country)
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'login_new_country' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'login_new_country')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_mass_deletion`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'mass_deletion' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'window_minutes')), 'UTC') AS windowStart,
    windowStart + toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'window_minutes')) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arraySort(groupUniqArrayArray(windowEvents)) AS events,
    arrayMap(e -> e.2, events) AS eventIDs,
    map(
        'deletions', toString(length(events)),
        'by_type', arrayStringConcat(arrayMap(n -> n || '=' || toString(countEqual(arrayMap(e -> e.3, events), n)),
            arraySort(arrayDistinct(arrayMap(e -> e.3, events)))), ','),
        'resources', arrayStringConcat(arraySort(groupUniqArrayArray(windowTargets)), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS entity,
        eventTime,
        groupArray((eventTime, eventID, eventName)) OVER w AS windowEvents,
        groupUniqArray(JSONExtractString(rawLog, eventName, 'id')) OVER w AS windowTargets,
        count() OVER w AS deletions,
        min(eventTime) OVER w AS windowFirst
    FROM `default`.`openai_audit_logs` FINAL
    WHERE has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'event_names'), eventName) AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'lookback_minutes')))
    WINDOW w AS (PARTITION BY workspaceID, sourceID, entity ORDER BY eventTime
                 RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'window_minutes') * 60 PRECEDING AND CURRENT ROW)
)
WHERE deletions >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'min_deletions')
GROUP BY workspaceID, sourceID, entity, windowStart
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mass_deletion' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'mass_deletion')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_mfa_failures`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'mfa_failures' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'window_minutes')), 'UTC') AS windowStart,
    windowStart + toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'window_minutes')) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arrayMap(e -> e.2, arraySort(groupUniqArrayArray(windowEvents))) AS eventIDs,
    map(
        'failures', toString(length(eventIDs)),
        'ips', arrayStringConcat(arraySort(groupUniqArrayArray(windowIPs)), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        lower(actorUserEmail) AS entity,
        eventTime,
        count() OVER w AS failures,
        groupUniqArrayIf(srcIP, srcIP != '') OVER w AS windowIPs,
        groupArray((eventTime, eventID)) OVER w AS windowEvents,
        min(eventTime) OVER w AS windowFirst
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName = 'login.failed' AND actorUserEmail != ''
        AND has((SELECT arrayFilter(x -> x != '', arrayMap(x -> lower(trimBoth(x)), splitByChar(',', value))) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'error_codes'), lower(JSONExtractString(rawLog, 'login.failed', 'error_code')))
        AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'lookback_minutes')))
    WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                 RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'window_minutes') * 60 PRECEDING AND CURRENT ROW)
)
WHERE failures >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'min_failures')
GROUP BY workspaceID, sourceID, entity, windowStart
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'mfa_failures' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'mfa_failures')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_org_security_settings_changed`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'org_security_settings_changed' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    multiIf(
        eventName = 'organization.updated' AND JSONExtractString(rawLog, eventName, 'changes_requested', 'api_call_logging') = 'disabled', 'HIGH',
        eventName = 'organization.updated', 'MEDIUM',
        match(eventName, '\\.(deleted|detached|archived)$'), 'HIGH',
        'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(JSONExtractString(rawLog, eventName, 'id') != '', JSONExtractString(rawLog, eventName, 'id'), 'organization') AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'settings', arrayStringConcat(arrayMap(kv -> kv.1 || '=' || kv.2, settings), ';'),
        'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventName,
        eventTime,
        eventID,
        rawLog,
        actorUserEmail,
        serviceAccountID,
        apiKeyID,
        arrayFilter(kv -> match(kv.1, (SELECT value FROM `default_detections`.`detection_parameters` WHERE rule = 'org_security_settings_changed' AND name = 'setting_pattern')),
            JSONExtractKeysAndValuesRaw(rawLog, eventName, 'changes_requested')) AS settings
    FROM `default`.`openai_audit_logs` FINAL
    WHERE (eventName = 'organization.updated' OR match(eventName, (SELECT value FROM `default_detections`.`detection_parameters` WHERE rule = 'org_security_settings_changed' AND name = 'tenant_event_pattern'))) AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'org_security_settings_changed' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'org_security_settings_changed' AND name = 'lookback_minutes')))
)
WHERE eventName != 'organization.updated' OR notEmpty(settings)
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'org_security_settings_changed' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'org_security_settings_changed')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_owners_beyond_threshold`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'owners_beyond_threshold' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'MEDIUM' AS severity,
    workspaceID,
    sourceID,
    scope AS entity,
    toDateTime(max(since)) AS windowStart,
    toDateTime(max(seenAt)) AS windowEnd,
    toDateTime(min(since)) AS firstEventTime,
    toDateTime(max(since)) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('owners', toString(count()), 'allowed', toString(any(allowed)),
        'principals', arrayStringConcat(arraySort(groupArray(objectID)), ',')) AS details
FROM
(
    SELECT n.workspaceID AS workspaceID, n.sourceID AS sourceID, n.kind AS kind, n.objectID AS objectID, n.seenAt AS seenAt,
        if(n.kind = 'user', 'organization', n.projectID) AS scope,
        if(n.kind = 'user', (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'owners_beyond_threshold' AND name = 'max_owners'), (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'owners_beyond_threshold' AND name = 'max_project_owners')) AS allowed,
        h.since AS since
    FROM `default`.`openai_inventory_now` AS n
    INNER JOIN
    (
        
        
        SELECT workspaceID, sourceID, kind, objectID, minIf(snapshotAt, isOwner AND snapshotAt > lastNotOwner) AS since
        FROM
        (
            SELECT workspaceID, sourceID, kind, objectID, snapshotAt,
                op = 'upsert' AND JSONExtractString(object, 'role') = 'owner' AS isOwner,
                maxIf(snapshotAt, NOT isOwner) OVER (PARTITION BY workspaceID, sourceID, kind, objectID) AS lastNotOwner
            FROM `default`.`openai_inventory_changes` FINAL
            WHERE kind IN ('user', 'project_user', 'project_service_account')
        )
        GROUP BY workspaceID, sourceID, kind, objectID
    ) AS h ON h.workspaceID = n.workspaceID AND h.sourceID = n.sourceID AND h.kind = n.kind AND h.objectID = n.objectID
    WHERE n.kind IN ('user', 'project_user', 'project_service_account') AND JSONExtractString(n.object, 'role') = 'owner'
        AND (n.workspaceID, n.sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'owners_beyond_threshold' AND name = 'lookback_minutes')))
)
GROUP BY workspaceID, sourceID, scope
HAVING count() > any(allowed)
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'owners_beyond_threshold' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'owners_beyond_threshold')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_password_spraying`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'password_spraying' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'window_minutes')), 'UTC') AS windowStart,
    windowStart + toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'window_minutes')) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arrayMap(e -> e.2, arraySort(groupUniqArrayArray(windowEvents))) AS eventIDs,
    map(
        'distinct_emails', toString(max(emails)),
        'failures', toString(length(eventIDs)),
        'emails', arrayStringConcat(arraySort(groupUniqArrayArray(windowEmails)), ','),
        'country', any(srcASCountryCode)
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        srcIP AS entity,
        srcASCountryCode,
        eventTime,
        uniqExact(lower(actorUserEmail)) OVER w AS emails,
        groupUniqArray(lower(actorUserEmail)) OVER w AS windowEmails,
        groupArray((eventTime, eventID)) OVER w AS windowEvents,
        min(eventTime) OVER w AS windowFirst
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName = 'login.failed' AND srcIP != '' AND actorUserEmail != '' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'lookback_minutes')))
    WINDOW w AS (PARTITION BY workspaceID, sourceID, srcIP ORDER BY eventTime
                 RANGE BETWEEN (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'window_minutes') * 60 PRECEDING AND CURRENT ROW)
)
WHERE emails >= (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'min_emails')
GROUP BY workspaceID, sourceID, entity, windowStart
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'password_spraying' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'password_spraying')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_privileged_role_assigned`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'privileged_role_assigned' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(eventName IN ('user.added', 'user.updated'), 'CRITICAL', 'HIGH') AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'role', role,
        'scope', if(eventName IN ('user.added', 'user.updated'), 'organization', if(eventName = 'invite.sent', 'invitation', 'project')),
        'granted_by', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)'),
        'project_id', projectID
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventName,
        eventTime,
        eventID,
        projectID,
        actorUserEmail,
        serviceAccountID,
        apiKeyID,
        multiIf(
            eventName = 'invite.sent', lower(JSONExtractString(rawLog, eventName, 'data', 'email')),
            eventName = 'role.assignment.created', JSONExtractString(rawLog, eventName, 'principal_id'),
            JSONExtractString(rawLog, eventName, 'id')) AS entity,
        multiIf(
            eventName IN ('user.added', 'service_account.created', 'invite.sent'), JSONExtractString(rawLog, eventName, 'data', 'role'),
            eventName IN ('user.updated', 'service_account.updated'), JSONExtractString(rawLog, eventName, 'changes_requested', 'role'),
            coalesce(nullIf(JSONExtractString(rawLog, eventName, 'role_name'), ''), JSONExtractString(rawLog, eventName, 'role'))) AS role
    FROM `default`.`openai_audit_logs` FINAL
    WHERE eventName IN ('user.added', 'user.updated', 'service_account.created', 'service_account.updated', 'invite.sent', 'role.assignment.created')
        AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'privileged_role_assigned' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'privileged_role_assigned' AND name = 'lookback_minutes')))
)
WHERE role != '' AND match(role, (SELECT value FROM `default_detections`.`detection_parameters` WHERE rule = 'privileged_role_assigned' AND name = 'role_pattern'))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'privileged_role_assigned' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'privileged_role_assigned')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_project_without_rate_limits`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'project_without_rate_limits' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    'LOW' AS severity,
    p.workspaceID AS workspaceID,
    p.sourceID AS sourceID,
    p.objectID AS entity,
    toDateTime(p.firstSeenAt) AS windowStart,
    toDateTime(p.seenAt) AS windowEnd,
    toDateTime(p.firstSeenAt) AS firstEventTime,
    toDateTime(p.seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('name', JSONExtractString(p.object, 'name'), 'rate_limits', toString(r.limits), 'lowest_requests_per_minute', toString(r.lowest)) AS details
FROM `default`.`openai_inventory_now` AS p
LEFT JOIN
(
    SELECT workspaceID, sourceID, projectID, count() AS limits, min(JSONExtractUInt(object, 'max_requests_per_1_minute')) AS lowest
    FROM `default`.`openai_inventory_now`
    WHERE kind = 'project_rate_limit'
    GROUP BY workspaceID, sourceID, projectID
) AS r ON r.workspaceID = p.workspaceID AND r.sourceID = p.sourceID AND r.projectID = p.objectID
WHERE p.kind = 'project' AND JSONExtractString(p.object, 'status') = 'active'
    AND (match(p.objectID, (SELECT value FROM `default_detections`.`detection_parameters` WHERE rule = 'project_without_rate_limits' AND name = 'project_pattern')) OR match(JSONExtractString(p.object, 'name'), (SELECT value FROM `default_detections`.`detection_parameters` WHERE rule = 'project_without_rate_limits' AND name = 'project_pattern')))
    AND (r.limits = 0 OR ((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'project_without_rate_limits' AND name = 'max_requests_per_1_minute') > 0 AND r.lowest > (SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'project_without_rate_limits' AND name = 'max_requests_per_1_minute')))
    AND (p.workspaceID, p.sourceID) IN (SELECT workspaceID, sourceID FROM `default`.`openai_inventory_snapshots` WHERE snapshotAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'project_without_rate_limits' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'project_without_rate_limits' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'project_without_rate_limits')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_rate_limit_raised`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'rate_limit_raised' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(length(raised) > 0, 'MEDIUM', 'LOW') AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    if(length(raised) > 0, arrayMin(arrayMap(c -> c.5, raised)), eventTime) AS firstEventTime,
    eventTime AS lastEventTime,
    arrayPushBack(arrayDistinct(arrayMap(c -> c.6, raised)), eventID) AS eventIDs,
    map(
        'raised', arrayStringConcat(arrayMap(c -> c.1 || ': ' || toString(c.3) || ' -> ' || toString(c.2), raised), ','),
        'set', arrayStringConcat(arrayMap(c -> c.1 || '=' || toString(c.2), changes), ','),
        'actor', actor,
        'project_id', projectID
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        entity,
        eventTime,
        eventID,
        groupArray((field, value, previousValue, hasPrevious, previousTime, previousID)) AS changes,
        arrayFilter(c -> c.4 AND c.2 > c.3 * (1 + (SELECT toFloat64(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'min_increase_percent') / 100), changes) AS raised,
        max(hasPrevious) AS anyBaseline,
        any(actor) AS actor,
        any(projectID) AS projectID
    FROM
    (
        SELECT
            workspaceID,
            sourceID,
            entity,
            eventTime,
            receivedAt,
            eventID,
            projectID,
            actor,
            field,
            value,
            lagInFrame(value) OVER w AS previousValue,
            lagInFrame(eventTime) OVER w AS previousTime,
            lagInFrame(eventID) OVER w AS previousID,
            previousID != '' AS hasPrevious
        FROM
        (
            SELECT
                workspaceID,
                sourceID,
                JSONExtractString(rawLog, 'rate_limit.updated', 'id') AS entity,
                eventTime,
                receivedAt,
                eventID,
                projectID,
                multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)') AS actor,
                change.1 AS field,
                change.2 AS value
            FROM `default`.`openai_audit_logs` FINAL
            ARRAY JOIN JSONExtractKeysAndValues(rawLog, 'rate_limit.updated', 'changes_requested', 'Float64') AS change
            WHERE eventName = 'rate_limit.updated'
                AND eventTime >= (
                    SELECT if(count() = 0, now(), min(eventTime))
                    FROM `default`.`openai_audit_logs`
                    WHERE eventName = 'rate_limit.updated' AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'lookback_minutes')))
                ) - toIntervalDay((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'history_days'))
        )
        WINDOW w AS (PARTITION BY workspaceID, sourceID, entity, field ORDER BY eventTime, eventID
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
    WHERE (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'lookback_minutes')))
    GROUP BY workspaceID, sourceID, entity, eventTime, eventID
)
WHERE length(raised) > 0 OR (NOT anyBaseline AND (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'report_without_baseline'))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'rate_limit_raised' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'rate_limit_raised')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_scim_changed`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'scim_changed' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(eventName = 'scim.enabled', 'LOW', 'HIGH') AS severity,
    workspaceID,
    sourceID,
    if(JSONExtractString(rawLog, eventName, 'id') != '', JSONExtractString(rawLog, eventName, 'id'), 'organization') AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map('event', eventName, 'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)')) AS details
FROM `default`.`openai_audit_logs` FINAL
WHERE eventName IN ('scim.enabled', 'scim.disabled', 'tenant.scim.deletion.requested') AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'scim_changed' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'scim_changed' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'scim_changed' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'scim_changed')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;

CREATE MATERIALIZED VIEW IF NOT EXISTS `default_detections`.`detect_workload_identity_trust_changed`
REFRESH EVERY 300 SECOND APPEND TO `default_detections`.`openai_audit_detections`
AS SELECT
    'workload_identity_trust_changed' AS rule, f.severity AS severity, f.workspaceID AS workspaceID, f.sourceID AS sourceID, f.entity AS entity,
    f.windowStart AS windowStart, f.windowEnd AS windowEnd, f.firstEventTime AS firstEventTime, f.lastEventTime AS lastEventTime,
    arraySlice(f.eventIDs, 1, 200) AS eventIDs, f.details AS details
FROM
(
SELECT
    if(eventName IN ('workload_identity_provider.created', 'tenant.workload_identity.provider.created'), 'HIGH', 'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(JSONExtractString(rawLog, eventName, 'id') != '', JSONExtractString(rawLog, eventName, 'id'), eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'provider_id', JSONExtractString(rawLog, eventName, 'identity_provider_id'),
        'actor', multiIf(actorUserEmail != '', lower(actorUserEmail), serviceAccountID != '', serviceAccountID, apiKeyID != '', apiKeyID, '(no actor)'),
        'project_id', projectID
    ) AS details
FROM `default`.`openai_audit_logs` FINAL
WHERE (startsWith(eventName, 'workload_identity_provider')
        OR match(eventName, '^tenant\\.workload_identity\\.(provider|mapping|binding)\\.'))
    AND (receivedAt >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'workload_identity_trust_changed' AND name = 'lookback_minutes')) OR eventTime >= now() - toIntervalMinute((SELECT toUInt32(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'workload_identity_trust_changed' AND name = 'lookback_minutes')))
) AS f
WHERE (SELECT toBool(value) FROM `default_detections`.`detection_parameters` WHERE rule = 'workload_identity_trust_changed' AND name = 'enabled')
    AND (f.workspaceID, f.sourceID, f.entity, f.windowStart) NOT IN (SELECT workspaceID, sourceID, entity, windowStart FROM `default_detections`.`openai_audit_detections` WHERE rule = 'workload_identity_trust_changed')
ORDER BY indexOf(['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], f.severity) DESC
LIMIT 1 BY f.workspaceID, f.sourceID, f.entity, f.windowStart;
