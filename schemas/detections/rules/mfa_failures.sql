-- id: mfa_failures
-- title: Repeated MFA failures for one account
-- severity: HIGH
-- mitre:
--   id: T1110
--   name: Brute Force
-- description: >
--   At least min_failures login.failed whose error_code is one of error_codes
--   (default mfa_failed) for one email within window_minutes. The password was
--   accepted and the second factor is being guessed or phished: the password
--   is probably compromised. The window slides over eventTime; a finding is
--   keyed by the fixed window_minutes interval in which the threshold was
--   crossed.
-- false_positives:
--   - A user whose authenticator clock drifted, or who is setting up a new phone.
-- knobs:
--   - name: min_failures
--     type: uint
--     default: "3"
--     description: MFA failures that make a finding
--   - name: window_minutes
--     type: uint
--     default: "10"
--     description: length of the sliding window (and of the finding's interval)
--   - name: error_codes
--     type: list
--     default: mfa_failed
--     description: login.failed error codes that mean the second factor failed
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
        'failures', toString(length(eventIDs)),
        'ips', arrayStringConcat(arraySort(groupUniqArrayArray(windowIPs)), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        lower(actorUserEmail) AS entity,
        eventTime,
        count() OVER w AS failures,
        groupUniqArrayIf(srcIP, srcIP != '') OVER w AS windowIPs,
        groupArray((eventTime, eventID)) OVER w AS windowEvents,
        min(eventTime) OVER w AS windowFirst
    FROM {{logs}} FINAL
    WHERE eventName = 'login.failed' AND actorUserEmail != ''
        AND has({{list "error_codes"}}, lower(JSONExtractString(rawLog, 'login.failed', 'error_code')))
        AND {{recent}}
    WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                 RANGE BETWEEN {{uint "window_minutes"}} * 60 PRECEDING AND CURRENT ROW)
)
WHERE failures >= {{uint "min_failures"}}
GROUP BY workspaceID, sourceID, entity, windowStart
