-- id: impossible_travel
-- title: Impossible travel between two sessions
-- severity: HIGH
-- mitre:
--   id: T1078.004
--   name: "Valid Accounts: Cloud Accounts"
-- description: >
--   Two consecutive session events of one email (any event whose actor is a
--   session with a geolocated address, failed logins and logouts excepted:
--   they prove no session) whose locations (srcLatitude,
--   srcLongitude) are at least min_distance_km apart and whose great-circle
--   distance divided by the time between them exceeds max_kmh, or that happen
--   in the same second. Someone else holds the session or the password. Each
--   jump is one finding; the window runs from the earlier event to the later.
--   Addresses without coordinates (0, 0) are ignored.
-- false_positives:
--   - A VPN or corporate proxy switching exit country mid-session.
--   - Mobile carriers and cloud-hosted browsers whose addresses geolocate far from the user.
-- knobs:
--   - name: max_kmh
--     type: float
--     default: "900"
--     description: speed above which travel is impossible (km/h; airliners cruise at about 900)
--   - name: min_distance_km
--     type: float
--     default: "500"
--     description: shorter jumps are ignored (GeoIP imprecision)
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    previousTime AS windowStart,
    eventTime AS windowEnd,
    previousTime AS firstEventTime,
    eventTime AS lastEventTime,
    [previousID, eventID] AS eventIDs,
    map(
        'from_ip', previousIP,
        'from_location', previousPlace,
        'to_ip', srcIP,
        'to_location', place,
        'distance_km', toString(round(distanceKm)),
        'seconds', toString(seconds),
        'speed_kmh', if(seconds = 0, 'inf', toString(round(distanceKm / seconds * 3600)))
    ) AS details
FROM
(
    SELECT
        *,
        greatCircleDistance(previousLon, previousLat, srcLongitude, srcLatitude) / 1000 AS distanceKm,
        dateDiff('second', previousTime, eventTime) AS seconds
    FROM
    (
        SELECT
            workspaceID,
            sourceID,
            lower(actorUserEmail) AS entity,
            eventTime,
            receivedAt,
            eventID,
            srcIP,
            srcLatitude,
            srcLongitude,
            concat(srcCity, if(srcCity != '', ', ', ''), srcASCountryCode) AS place,
            lagInFrame(eventTime) OVER w AS previousTime,
            lagInFrame(eventID) OVER w AS previousID,
            lagInFrame(srcIP) OVER w AS previousIP,
            lagInFrame(srcLatitude) OVER w AS previousLat,
            lagInFrame(srcLongitude) OVER w AS previousLon,
            lagInFrame(place) OVER w AS previousPlace
        FROM {{logs}} FINAL
        WHERE actorType = 'session' AND actorUserEmail != '' AND NOT (srcLatitude = 0 AND srcLongitude = 0)
            AND eventName NOT IN ('login.failed', 'logout.failed')
            -- Context: the previous event can be older than the lookback, but not
            -- older than the slowest impossible trip around half the Earth.
            AND eventTime >= (
                SELECT if(count() = 0, now(), min(eventTime))
                FROM {{logs}}
                WHERE actorType = 'session' AND {{recent}}
            ) - toIntervalSecond(toUInt32(least(20038 / {{float "max_kmh"}}, 48) * 3600) + 3600)
        WINDOW w AS (PARTITION BY workspaceID, sourceID, lower(actorUserEmail) ORDER BY eventTime, eventID
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
    WHERE previousID != '' AND {{recent}}
)
WHERE distanceKm >= {{float "min_distance_km"}}
    AND (seconds = 0 OR distanceKm / seconds * 3600 > {{float "max_kmh"}})
