-- id: invite_external_domain
-- title: Invitation to an email domain outside the organization
-- severity: MEDIUM
-- mitre:
--   id: T1136.003
--   name: "Create Account: Cloud Account"
-- description: >
--   invite.sent to an email whose domain no member of the organization uses:
--   no actor email of the same workspace and source in the log during the
--   history_days before has that domain, and it is not in allowed_domains.
--   An attacker inviting an account they control keeps access after the
--   compromised one is reset. HIGH when the invitation carries the owner
--   role. The entity is the invited email.
-- false_positives:
--   - Inviting a contractor, auditor or partner (add their domain to allowed_domains).
--   - The first invitation of a second company domain after a merger.
-- knobs:
--   - name: history_days
--     type: uint
--     default: "90"
--     description: days of member activity that define the organization's domains
--   - name: allowed_domains
--     type: list
--     default: ""
--     description: domains never reported (comma-separated)
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
        {{actor}} AS invitedBy,
        lower(JSONExtractString(rawLog, 'invite.sent', 'data', 'email')) AS invited,
        splitByChar('@', invited)[-1] AS domain,
        JSONExtractString(rawLog, 'invite.sent', 'data', 'role') AS role
    FROM {{logs}} FINAL
    WHERE eventName = 'invite.sent' AND {{recent}}
) AS i
LEFT JOIN
(
    -- Each domain of member emails, with when it was first seen.
    SELECT workspaceID, sourceID, lower(splitByChar('@', actorUserEmail)[-1]) AS domain, min(eventTime) AS since
    FROM {{logs}}
    WHERE actorUserEmail LIKE '%_@_%'
        AND eventTime >= (
            SELECT if(count() = 0, now(), min(eventTime))
            FROM {{logs}}
            WHERE eventName = 'invite.sent' AND {{recent}}
        ) - toIntervalDay({{uint "history_days"}})
    GROUP BY workspaceID, sourceID, domain
) AS m ON i.workspaceID = m.workspaceID AND i.sourceID = m.sourceID AND i.domain = m.domain
WHERE position(i.invited, '@') > 0
    AND NOT has({{list "allowed_domains"}}, i.domain)
    AND (m.since = toDateTime(0) OR m.since > i.eventTime)
