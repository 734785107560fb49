-- id: api_key_unused
-- title: API key unused for a long time
-- severity: MEDIUM
-- mitre:
--   id: T1078.004
--   name: "Valid Accounts: Cloud Accounts"
-- description: >
--   An admin or project API key, in the inventory now, not used for more than
--   unused_days (last_used_at, or created_at when it was never used). A key
--   nobody uses is a credential that can only leak: revoke it. MEDIUM for
--   admin keys, LOW for project keys. One finding per key and period of
--   disuse (windowStart is the last use, or the creation); the key's last use
--   comes from the inventory, at most a day old (the daily baseline).
-- false_positives:
--   - Break-glass or disaster-recovery keys kept on purpose and used once a year.
--   - Keys of seasonal batch jobs.
-- knobs:
--   - name: unused_days
--     type: uint
--     default: "90"
--     description: days without use that make a finding
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
FROM {{inventoryKeys}}
WHERE greatest(lastUsedAt, createdAt) < now() - toIntervalDay({{uint "unused_days"}})
    AND {{current}}
