-- id: credential_stuffing
-- title: Credential stuffing against one account
-- severity: HIGH
-- mitre:
--   id: T1110.004
--   name: "Brute Force: Credential Stuffing"
-- description: >
--   At least min_ips distinct source IPs fail to log in (login.failed) to one
--   email within window_minutes. Stolen credential lists are replayed from many
--   addresses (proxies, botnets) to stay under per-IP limits, so many failing
--   addresses against one account is the signature. The window slides over
--   eventTime; a finding is keyed by the fixed window_minutes interval in which
--   the threshold was crossed, so a sustained attack yields one finding per
--   interval.
-- false_positives:
--   - A user whose mobile carrier or VPN rotates exit addresses while they retype a forgotten password.
--   - An SSO or password-manager misconfiguration retrying from many egress IPs of a corporate proxy pool.
-- knobs:
--   - name: min_ips
--     type: uint
--     default: "5"
--     description: distinct failing source IPs that make a finding
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
        'distinct_ips', toString(max(ips)),
        'failures', toString(length(eventIDs)),
        'ips', arrayStringConcat(arraySort(groupUniqArrayArray(windowIPs)), ','),
        'countries', arrayStringConcat(arraySort(groupUniqArrayArray(windowCountries)), ','),
        'error_codes', arrayStringConcat(arraySort(groupUniqArrayArray(windowCodes)), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        lower(actorUserEmail) AS entity,
        eventTime,
        uniqExactIf(srcIP, srcIP != '') OVER w AS ips,
        groupUniqArrayIf(srcIP, srcIP != '') OVER w AS windowIPs,
        groupUniqArrayIf(srcASCountryCode, srcASCountryCode != '') OVER w AS windowCountries,
        groupUniqArray(JSONExtractString(rawLog, 'login.failed', 'error_code')) OVER w AS windowCodes,
        groupArray((eventTime, eventID)) OVER w AS windowEvents,
        min(eventTime) OVER w AS windowFirst
    FROM {{logs}} FINAL
    WHERE eventName = 'login.failed' AND actorUserEmail != '' AND {{recent}}
    WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                 RANGE BETWEEN {{uint "window_minutes"}} * 60 PRECEDING AND CURRENT ROW)
)
WHERE ips >= {{uint "min_ips"}}
GROUP BY workspaceID, sourceID, entity, windowStart
