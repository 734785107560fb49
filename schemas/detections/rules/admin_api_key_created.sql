-- id: admin_api_key_created
-- title: Admin API key created or changed
-- severity: HIGH
-- mitre:
--   id: T1098.001
--   name: "Account Manipulation: Additional Cloud Credentials"
-- description: >
--   tenant.admin_api_key.created (HIGH) or tenant.admin_api_key.updated
--   (MEDIUM). Admin keys act on the whole organization (users, projects, keys,
--   the audit log itself), so each new one deserves a look. These are
--   tenant-scoped event types: they reach auditpipe only when the poller's
--   tenant stream is on. The entity is the key id of the payload (or the
--   event id when the payload has none).
-- false_positives:
--   - Rotation of the admin key used by auditpipe or another integration; expect a created followed by a deletion of the old key.
-- knobs: []
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
    map('event', eventName, 'actor', {{actor}}) AS details
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
    FROM {{logs}} FINAL
    WHERE eventName IN ('tenant.admin_api_key.created', 'tenant.admin_api_key.updated') AND {{recent}}
)
