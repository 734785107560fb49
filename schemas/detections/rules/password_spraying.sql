-- id: password_spraying
-- title: Password spraying from one address
-- severity: HIGH
-- mitre:
--   id: T1110.003
--   name: "Brute Force: Password Spraying"
-- description: >
--   One source IP fails to log in (login.failed) to at least min_emails
--   distinct emails within window_minutes: a few common passwords tried
--   against many accounts. The window slides over eventTime; a finding is
--   keyed by the IP and the fixed window_minutes interval in which the
--   threshold was crossed.
-- false_positives:
--   - Many employees behind one corporate NAT or proxy address failing around the same time (an SSO outage, a forced password rotation).
--   - A shared kiosk or training-room machine.
-- knobs:
--   - name: min_emails
--     type: uint
--     default: "5"
--     description: distinct emails failing from one IP that make a finding
--   - name: window_minutes
--     type: uint
--     default: "30"
--     description: length of the sliding window (and of the finding's interval)
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalMinute({{uint "window_minutes"}}), 'UTC') AS windowStart,
    windowStart + toIntervalMinute({{uint "window_minutes"}}) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arrayMap(e -> e.2, arraySort(groupUniqArrayArray(windowEvents))) AS eventIDs,
    map(
        'distinct_emails', toString(max(emails)),
        'failures', toString(length(eventIDs)),
        'emails', arrayStringConcat(arraySort(groupUniqArrayArray(windowEmails)), ','),
        'country', any(srcASCountryCode)
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        srcIP AS entity,
        srcASCountryCode,
        eventTime,
        uniqExact(lower(actorUserEmail)) OVER w AS emails,
        groupUniqArray(lower(actorUserEmail)) OVER w AS windowEmails,
        groupArray((eventTime, eventID)) OVER w AS windowEvents,
        min(eventTime) OVER w AS windowFirst
    FROM {{logs}} FINAL
    WHERE eventName = 'login.failed' AND srcIP != '' AND actorUserEmail != '' AND {{recent}}
    WINDOW w AS (PARTITION BY workspaceID, sourceID, srcIP ORDER BY eventTime
                 RANGE BETWEEN {{uint "window_minutes"}} * 60 PRECEDING AND CURRENT ROW)
)
WHERE emails >= {{uint "min_emails"}}
GROUP BY workspaceID, sourceID, entity, windowStart
