-- id: admin_api_key_long_lived
-- title: Admin API key without an expiry, or expiring too late
-- severity: MEDIUM
-- mitre:
--   id: T1098.001
--   name: "Account Manipulation: Additional Cloud Credentials"
-- description: >
--   An admin API key in the inventory now that never expires (MEDIUM) or
--   expires more than max_lifetime_days after now (LOW). Admin keys manage the
--   whole organization; a short, enforced lifetime limits what a leaked one
--   is worth. One finding per key (windowStart is its creation).
-- false_positives:
--   - The key of a monitoring integration (such as this pipeline) whose rotation is managed elsewhere.
-- knobs:
--   - name: max_lifetime_days
--     type: uint
--     default: "90"
--     description: an expiry further out than this many days from now makes a LOW finding
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
FROM {{inventoryKeys}}
WHERE kind = 'admin_api_key'
    AND (expiresAt = 0 OR expiresAt > now() + toIntervalDay({{uint "max_lifetime_days"}}))
    AND {{current}}
