-- id: owners_beyond_threshold
-- title: More owners than the policy allows
-- severity: MEDIUM
-- mitre:
--   id: T1098.003
--   name: "Account Manipulation: Additional Cloud Roles"
-- description: >
--   The organization has more than max_owners users with the owner role, or a
--   project more than max_project_owners owners (project users and service
--   accounts), in the inventory now. Every owner can grant anything; keep the
--   set small. The entity is "organization" or the project id; a new finding
--   is made when the set grows again (windowStart is when its newest owner
--   appeared, from the inventory's history).
-- false_positives:
--   - A migration or reorganisation that temporarily doubles the owners.
-- knobs:
--   - name: max_owners
--     type: uint
--     default: "3"
--     description: organization owners allowed
--   - name: max_project_owners
--     type: uint
--     default: "3"
--     description: owners allowed per project
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
        if(n.kind = 'user', {{uint "max_owners"}}, {{uint "max_project_owners"}}) AS allowed,
        h.since AS since
    FROM {{inventory}} AS n
    INNER JOIN
    (
        -- When each principal became owner: its first owner row after its
        -- last row that was not an owner.
        SELECT workspaceID, sourceID, kind, objectID, minIf(snapshotAt, isOwner AND snapshotAt > lastNotOwner) AS since
        FROM
        (
            SELECT workspaceID, sourceID, kind, objectID, snapshotAt,
                op = 'upsert' AND JSONExtractString(object, 'role') = 'owner' AS isOwner,
                maxIf(snapshotAt, NOT isOwner) OVER (PARTITION BY workspaceID, sourceID, kind, objectID) AS lastNotOwner
            FROM {{inventoryChanges}} FINAL
            WHERE kind IN ('user', 'project_user', 'project_service_account')
        )
        GROUP BY workspaceID, sourceID, kind, objectID
    ) AS h ON h.workspaceID = n.workspaceID AND h.sourceID = n.sourceID AND h.kind = n.kind AND h.objectID = n.objectID
    WHERE n.kind IN ('user', 'project_user', 'project_service_account') AND JSONExtractString(n.object, 'role') = 'owner'
        AND (n.workspaceID, n.sourceID) IN (SELECT workspaceID, sourceID FROM {{inventorySnapshots}} WHERE snapshotAt >= now() - toIntervalMinute({{uint "lookback_minutes"}}))
)
GROUP BY workspaceID, sourceID, scope
HAVING count() > any(allowed)
