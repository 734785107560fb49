-- id: login_new_country
-- title: Login from a new country
-- severity: MEDIUM
-- mitre:
--   id: T1078.004
--   name: "Valid Accounts: Cloud Accounts"
-- description: >
--   A login.succeeded from a country (srcASCountryCode) that the same email
--   has not logged in from during the baseline_days before it, while the email
--   has at least min_baseline_logins successful logins in that period (so a
--   new user's first login is not a finding). The baseline is read from
--   openai_audit_logs by eventTime, also for late-loaded logins. The entity is
--   the email.
-- false_positives:
--   - Travel, or a VPN or proxy exiting in another country.
--   - A GeoIP database update moving an address to another country.
-- knobs:
--   - name: baseline_days
--     type: uint
--     default: "30"
--     description: days of login history a country must be absent from
--   - name: min_baseline_logins
--     type: uint
--     default: "1"
--     description: successful logins the email needs in the baseline to be judged
SELECT
    'MEDIUM' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'country', country,
        'city', srcCity,
        'ip', srcIP,
        'baseline_countries', arrayStringConcat(arraySort(baselineCountries), ','),
        'baseline_logins', toString(baselineLogins)
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        lower(actorUserEmail) AS entity,
        srcASCountryCode AS country,
        srcCity,
        srcIP,
        eventTime,
        receivedAt,
        eventID,
        count() OVER baseline AS baselineLogins,
        groupUniqArray(srcASCountryCode) OVER baseline AS baselineCountries
    FROM {{logs}} FINAL
    WHERE eventName = 'login.succeeded' AND actorUserEmail != '' AND srcASCountryCode != ''
        AND eventTime >= (
            SELECT if(count() = 0, now(), min(eventTime))
            FROM {{logs}}
            WHERE eventName = 'login.succeeded' AND {{recent}}
        ) - toIntervalDay({{uint "baseline_days"}})
    WINDOW baseline AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime
                        RANGE BETWEEN {{uint "baseline_days"}} * 86400 + 1 PRECEDING AND 1 PRECEDING)
)
WHERE {{recent}}
    AND baselineLogins >= {{uint "min_baseline_logins"}}
    AND NOT has(baselineCountries, country)
