-- id: audit_gap
-- title: Inventory change the audit log does not explain
-- severity: HIGH
-- mitre:
--   id: T1562.008
--   name: "Impair Defenses: Disable or Modify Cloud Logs"
-- description: >
--   Compares consecutive inventory snapshots with the audit log. An object that
--   appeared, disappeared, or changed a watched field between two snapshots
--   that listed its kind, with no audit event of the matching types naming it
--   (by id; a role assignment by its principal or role; a project-scoped object that
--   disappeared also by its project's archival or deletion) between the two
--   snapshots (widened by slack_minutes), is a finding: the audit log missed a
--   change (OpenAI has lost audit events before) or someone changed the
--   organization by a path that is not audited. The entity is
--   <kind>/<object id>, the window runs from the previous snapshot to the one
--   that saw the change, and the details name the change, the fields and the
--   event types that would have explained it. A change is judged once
--   settle_minutes have passed, so that late audit events can arrive first.
--   HIGH for keys, users, service accounts and certificates, else MEDIUM.
--   Kinds the audit log does not cover (project users, spend and retention
--   settings) are not judged; admin keys need the poller's tenant_only
--   stream.
-- false_positives:
--   - Audit events that arrive later than settle_minutes (raise it for sources known to backfill).
--   - An invitation that expires, or a key whose owner loses project access, changes without an event of its own (neither field is watched by default).
-- knobs:
--   - name: watched_fields
--     type: list
--     default: "project_api_key.name,admin_api_key.name,admin_api_key.expires_at,user.role,project.name,project.status,project_service_account.role,certificate.name,certificate.active,group.name,role.name,role.permissions,project_rate_limit.max_requests_per_1_minute,project_rate_limit.max_tokens_per_1_minute"
--     description: kind.field pairs whose change must be explained (top-level fields of the object)
--   - name: slack_minutes
--     type: uint
--     default: "5"
--     description: minutes added on both sides of the window when looking for explaining events
--   - name: settle_minutes
--     type: uint
--     default: "60"
--     description: a change is judged only when the snapshot that saw it is this old
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
    {{uint "slack_minutes"}} * 60 AS slack
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
                   arrayMap(x -> substring(x, length(h.kind) + 2), arrayFilter(x -> startsWith(x, concat(h.kind, '.')), {{list "watched_fields"}}))),
               CAST([], 'Array(String)')) AS fields,
            arrayFilter(m -> m.1 = h.kind AND m.2 = change, explained_by)[1].3 AS names
        FROM
        (
            SELECT workspaceID, sourceID, kind, objectID, projectID, snapshotID, snapshotAt, toString(op) AS op, hash, object,
                lagInFrame(toString(op), 1, '') OVER w AS prevOp,
                lagInFrame(hash, 1, '') OVER w AS prevHash,
                lagInFrame(object, 1, '') OVER w AS prevObject
            FROM {{inventoryChanges}} FINAL
            -- Two days more than judged: every live object has a row a day.
            WHERE snapshotAt >= now() - toIntervalMinute({{uint "lookback_minutes"}} + {{uint "settle_minutes"}}) - INTERVAL 2 DAY
            WINDOW w AS (PARTITION BY workspaceID, sourceID, kind, objectID ORDER BY snapshotAt ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        ) AS h
        INNER JOIN
        (
            -- Each snapshot that listed a kind in full, with the previous one
            -- that did.
            SELECT workspaceID, sourceID, kind, snapshotAt,
                lagInFrame(snapshotAt, 1, toDateTime64(0, 3, 'UTC')) OVER (PARTITION BY workspaceID, sourceID, kind ORDER BY snapshotAt ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prevAt
            FROM {{inventorySnapshots}} FINAL
            ARRAY JOIN mapKeys(counts) AS kind
            WHERE snapshotAt >= now() - toIntervalMinute({{uint "lookback_minutes"}} + {{uint "settle_minutes"}}) - INTERVAL 2 DAY
        ) AS s ON s.workspaceID = h.workspaceID AND s.sourceID = h.sourceID AND s.kind = h.kind AND s.snapshotAt = h.snapshotAt
        WHERE h.snapshotAt >= now() - toIntervalMinute({{uint "lookback_minutes"}} + {{uint "settle_minutes"}})
            AND h.snapshotAt <= now() - toIntervalMinute({{uint "settle_minutes"}})
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
    FROM {{logs}} FINAL
    WHERE eventTime >= now() - toIntervalMinute({{uint "lookback_minutes"}} + {{uint "settle_minutes"}}) - INTERVAL 2 DAY
        AND has(arrayFlatten(arrayMap(m -> m.3, explained_by)), eventName)
) AS e ON e.workspaceID = c.workspaceID AND e.sourceID = c.sourceID
GROUP BY c.workspaceID, c.sourceID, c.kind, c.objectID, c.projectID, c.snapshotID, c.windowStart, c.windowEnd, c.change, c.fields, c.names, c.matchIDs
HAVING countIf(e.eventTime >= toDateTime(c.windowStart) - slack AND e.eventTime <= toDateTime(c.windowEnd) + slack AND has(c.names, e.eventName)
    AND (hasAny(e.ids, c.matchIDs) OR (c.change = 'disappeared' AND e.eventName IN ('project.archived', 'project.deleted') AND has(e.ids, c.projectID)))) = 0
