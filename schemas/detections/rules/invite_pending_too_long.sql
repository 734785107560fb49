-- id: invite_pending_too_long
-- title: Invitation pending for too long
-- severity: LOW
-- mitre:
--   id: T1136.003
--   name: "Create Account: Cloud Account"
-- description: >
--   An invitation in the inventory now that has been pending for more than
--   pending_days. A forgotten invitation is a standing offer of access that
--   anyone who controls the mailbox can accept (a former contractor, a
--   hijacked address). One finding per invitation (windowStart is when it was
--   sent).
-- false_positives:
--   - Invitations to people who start next month.
-- knobs:
--   - name: pending_days
--     type: uint
--     default: "7"
--     description: days pending that make a finding
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
FROM {{inventory}}
WHERE kind = 'invite' AND JSONExtractString(object, 'status') = 'pending'
    AND JSONExtractUInt(object, 'created_at') < toUnixTimestamp(now() - toIntervalDay({{uint "pending_days"}}))
    AND {{current}}
