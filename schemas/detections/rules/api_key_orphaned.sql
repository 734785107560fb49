-- id: api_key_orphaned
-- title: API key whose owner is gone or has lost project access
-- severity: HIGH
-- mitre:
--   id: T1078.004
--   name: "Valid Accounts: Cloud Accounts"
-- description: >
--   A project API key in the inventory now whose owner no longer exists (a
--   user missing from the organization's users, a service account missing
--   from its project) or whose owner_project_access is inactive. Keys should
--   die with their owner's access; one that outlives it is a credential
--   nobody is accountable for. One finding per key (windowStart is its
--   creation). The audit-log rule deleted_principal_key_activity reports such
--   a key when it is used.
-- false_positives:
--   - An owner removed minutes ago whose keys the offboarding script revokes next.
-- knobs: []
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
FROM {{inventoryKeys}} AS k
LEFT JOIN
(
    SELECT workspaceID, sourceID, if(kind = 'user', '', projectID) AS projectID, objectID, 1 AS present
    FROM {{inventory}}
    WHERE kind IN ('user', 'project_service_account')
) AS o ON o.workspaceID = k.workspaceID AND o.sourceID = k.sourceID AND o.objectID = k.ownerID
    AND o.projectID = if(k.ownerType = 'service_account', k.projectID, '')
WHERE k.kind = 'project_api_key' AND (k.ownerProjectAccess = 'inactive' OR o.present = 0)
    AND (k.workspaceID, k.sourceID) IN (SELECT workspaceID, sourceID FROM {{inventorySnapshots}} WHERE snapshotAt >= now() - toIntervalMinute({{uint "lookback_minutes"}}))
