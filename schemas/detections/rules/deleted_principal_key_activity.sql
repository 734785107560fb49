-- id: deleted_principal_key_activity
-- title: API key of a deleted user, service account or key still in use
-- severity: HIGH
-- mitre:
--   id: T1078.004
--   name: "Valid Accounts: Cloud Accounts"
-- description: >
--   An event performed with an API key (actor.api_key) after its owner was
--   deleted: the key's user (user.deleted), its service account
--   (service_account.deleted), or the key itself (api_key.deleted), within
--   history_days before. Keys should die with their owner; activity means the
--   deletion did not revoke it, or the log is being replayed. One finding per
--   key and UTC day of activity; the entity is the key's tracking id and the
--   deletion event is the first of the event ids.
-- false_positives:
--   - Events of the key that happened before the deletion but whose effective_at is later because of clock skew (seconds apart).
-- knobs:
--   - name: history_days
--     type: uint
--     default: "90"
--     description: how far back deletions are looked for
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
    FROM {{logs}} FINAL
    ARRAY JOIN [('user.deleted', actorUserID), ('service_account.deleted', serviceAccountID), ('api_key.deleted', apiKeyID)] AS candidate
    WHERE actorType = 'api_key' AND apiKeyID != '' AND candidate.2 != '' AND {{recent}}
) AS a
INNER JOIN
(
    SELECT workspaceID, sourceID, eventName AS kind, JSONExtractString(rawLog, eventName, 'id') AS principal,
        min(eventTime) AS deletedAt, argMin(eventID, eventTime) AS deletionID
    FROM {{logs}}
    WHERE eventName IN ('user.deleted', 'service_account.deleted', 'api_key.deleted')
        AND eventTime >= now() - toIntervalDay({{uint "history_days"}})
    GROUP BY workspaceID, sourceID, kind, principal
) AS d ON a.workspaceID = d.workspaceID AND a.sourceID = d.sourceID AND a.kind = d.kind AND a.principal = d.principal
WHERE a.eventTime > d.deletedAt
GROUP BY workspaceID, sourceID, entity, windowStart
