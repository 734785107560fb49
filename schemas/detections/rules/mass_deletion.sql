-- id: mass_deletion
-- title: Mass deletion by one actor
-- severity: HIGH
-- mitre:
--   id: T1485
--   name: Data Destruction
-- description: >
--   One actor deletes at least min_deletions users, API keys, projects or
--   service accounts (event types in event_names) within window_minutes:
--   destruction or lock-out by a compromised administrator, or an insider
--   leaving. The window slides over eventTime; a finding is keyed by the actor
--   and the fixed window_minutes interval in which the threshold was crossed.
--   Events without an actor are attributed to '(no actor)'.
-- false_positives:
--   - Offboarding a team or cleaning up stale keys and projects in bulk; expect a ticket and a known administrator.
-- knobs:
--   - name: min_deletions
--     type: uint
--     default: "5"
--     description: deletions by one actor that make a finding
--   - name: window_minutes
--     type: uint
--     default: "10"
--     description: length of the sliding window (and of the finding's interval)
--   - name: event_names
--     type: list
--     default: user.deleted,api_key.deleted,project.deleted,project.archived,service_account.deleted,tenant.user.removed,tenant.service_account.deleted
--     description: event types that count as deletions
SELECT
    'HIGH' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalMinute({{uint "window_minutes"}}), 'UTC') AS windowStart,
    windowStart + toIntervalMinute({{uint "window_minutes"}}) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arraySort(groupUniqArrayArray(windowEvents)) AS events,
    arrayMap(e -> e.2, events) AS eventIDs,
    map(
        'deletions', toString(length(events)),
        'by_type', arrayStringConcat(arrayMap(n -> n || '=' || toString(countEqual(arrayMap(e -> e.3, events), n)),
            arraySort(arrayDistinct(arrayMap(e -> e.3, events)))), ','),
        'resources', arrayStringConcat(arraySort(groupUniqArrayArray(windowTargets)), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        {{actor}} AS entity,
        eventTime,
        groupArray((eventTime, eventID, eventName)) OVER w AS windowEvents,
        groupUniqArray(JSONExtractString(rawLog, eventName, 'id')) OVER w AS windowTargets,
        count() OVER w AS deletions,
        min(eventTime) OVER w AS windowFirst
    FROM {{logs}} FINAL
    WHERE has({{list "event_names"}}, eventName) AND {{recent}}
    WINDOW w AS (PARTITION BY workspaceID, sourceID, entity ORDER BY eventTime
                 RANGE BETWEEN {{uint "window_minutes"}} * 60 PRECEDING AND CURRENT ROW)
)
WHERE deletions >= {{uint "min_deletions"}}
GROUP BY workspaceID, sourceID, entity, windowStart
