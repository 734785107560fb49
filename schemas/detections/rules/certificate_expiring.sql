-- id: certificate_expiring
-- title: mTLS certificate expired or about to expire
-- severity: HIGH
-- mitre:
--   id: T1556
--   name: Modify Authentication Process
-- description: >
--   A certificate in the inventory now whose certificate_details.expires_at is
--   within expiry_days (MEDIUM), or already past while it is active (HIGH).
--   When an active certificate expires, the clients it authenticates are
--   locked out, and the rushed rotation that follows is when mistakes are
--   made. One finding per certificate and expiry date.
-- false_positives:
--   - A certificate kept inactive on purpose after its replacement was activated.
-- knobs:
--   - name: expiry_days
--     type: uint
--     default: "30"
--     description: days before the expiry that make a finding
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
    FROM {{inventory}}
    WHERE kind = 'certificate' AND {{current}}
)
WHERE expiresAt != 0 AND expiresAt < now() + toIntervalDay({{uint "expiry_days"}})
