-- id: brute_force_success
-- title: Successful login after repeated failures
-- severity: HIGH
-- mitre:
--   id: T1110.001
--   name: "Brute Force: Password Guessing"
-- description: >
--   A login.succeeded for an email preceded by at least min_failures
--   login.failed for the same email within window_minutes, all strictly
--   earlier (a failure in the same second as the success does not count, its
--   order is unknown) and after the email's previous successful login: the
--   guessing worked. One finding per successful login; its window ends at
--   the success.
-- false_positives:
--   - A user who forgot their password and got it right after several tries (check that the failures and the success share the user's usual IP and country).
--   - A script with a stale password retrying before someone fixes it.
-- knobs:
--   - name: min_failures
--     type: uint
--     default: "5"
--     description: failed logins before the success that make a finding
--   - name: window_minutes
--     type: uint
--     default: "30"
--     description: how far before the success failures count
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime - toIntervalMinute({{uint "window_minutes"}}) AS windowStart,
    eventTime AS windowEnd,
    arrayMin(arrayMap(e -> e.1, failures)) AS firstEventTime,
    eventTime AS lastEventTime,
    arrayPushBack(arrayMap(e -> e.2, arraySort(failures)), eventID) AS eventIDs,
    map(
        'failures', toString(length(failures)),
        'failure_ips', arrayStringConcat(arraySort(arrayDistinct(arrayMap(e -> e.3, failures))), ','),
        'success_ip', srcIP,
        'success_country', srcASCountryCode,
        'success_ip_among_failures', if(has(arrayMap(e -> e.3, failures), srcIP), 'true', 'false')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        entity,
        eventTime,
        eventID,
        srcIP,
        srcASCountryCode,
        arrayMax(arrayPushFront(arrayFilter(t -> t < eventTime, windowSuccesses), toDateTime(0))) AS previousSuccess,
        arrayFilter(e -> e.1 > previousSuccess AND e.1 < eventTime, windowFailures) AS failures
    FROM
    (
        SELECT
            workspaceID,
            sourceID,
            lower(actorUserEmail) AS entity,
            eventName,
            eventTime,
            eventID,
            srcIP,
            srcASCountryCode,
            groupArrayIf((eventTime, eventID, srcIP), eventName = 'login.failed') OVER w AS windowFailures,
            groupArrayIf(eventTime, eventName = 'login.succeeded') OVER w AS windowSuccesses
        FROM {{logs}} FINAL
        WHERE eventName IN ('login.failed', 'login.succeeded') AND actorUserEmail != '' AND {{recent}}
        WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                     RANGE BETWEEN {{uint "window_minutes"}} * 60 PRECEDING AND CURRENT ROW)
    )
    WHERE eventName = 'login.succeeded'
)
WHERE length(failures) >= {{uint "min_failures"}}
