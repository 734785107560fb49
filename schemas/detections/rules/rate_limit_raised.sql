-- id: rate_limit_raised
-- title: Rate limit raised
-- severity: MEDIUM
-- mitre:
--   id: T1496
--   name: Resource Hijacking
-- description: >
--   A rate_limit.updated sets a limit (any changes_requested field, e.g.
--   max_requests_per_1_minute or max_tokens_per_1_minute) more than
--   min_increase_percent above the value the previous rate_limit.updated of
--   the same rate limit (payload id) set within history_days: someone makes
--   room for abuse or runaway spend. The API reports only the new values, so
--   the first update seen for a limit has no baseline; with
--   report_without_baseline it is reported as LOW. One finding per event;
--   the entity is the rate limit id.
-- false_positives:
--   - Planned capacity increases for a launch or a batch job.
-- knobs:
--   - name: min_increase_percent
--     type: float
--     default: "0"
--     description: increases up to this percentage are ignored
--   - name: history_days
--     type: uint
--     default: "90"
--     description: how far back the previous value of a limit is looked for
--   - name: report_without_baseline
--     type: bool
--     default: "false"
--     description: also report (LOW) updates of a limit with no earlier value in the log
SELECT
    if(length(raised) > 0, 'MEDIUM', 'LOW') AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    if(length(raised) > 0, arrayMin(arrayMap(c -> c.5, raised)), eventTime) AS firstEventTime,
    eventTime AS lastEventTime,
    arrayPushBack(arrayDistinct(arrayMap(c -> c.6, raised)), eventID) AS eventIDs,
    map(
        'raised', arrayStringConcat(arrayMap(c -> c.1 || ': ' || toString(c.3) || ' -> ' || toString(c.2), raised), ','),
        'set', arrayStringConcat(arrayMap(c -> c.1 || '=' || toString(c.2), changes), ','),
        'actor', actor,
        'project_id', projectID
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        entity,
        eventTime,
        eventID,
        groupArray((field, value, previousValue, hasPrevious, previousTime, previousID)) AS changes,
        arrayFilter(c -> c.4 AND c.2 > c.3 * (1 + {{float "min_increase_percent"}} / 100), changes) AS raised,
        max(hasPrevious) AS anyBaseline,
        any(actor) AS actor,
        any(projectID) AS projectID
    FROM
    (
        SELECT
            workspaceID,
            sourceID,
            entity,
            eventTime,
            receivedAt,
            eventID,
            projectID,
            actor,
            field,
            value,
            lagInFrame(value) OVER w AS previousValue,
            lagInFrame(eventTime) OVER w AS previousTime,
            lagInFrame(eventID) OVER w AS previousID,
            previousID != '' AS hasPrevious
        FROM
        (
            SELECT
                workspaceID,
                sourceID,
                JSONExtractString(rawLog, 'rate_limit.updated', 'id') AS entity,
                eventTime,
                receivedAt,
                eventID,
                projectID,
                {{actor}} AS actor,
                change.1 AS field,
                change.2 AS value
            FROM {{logs}} FINAL
            ARRAY JOIN JSONExtractKeysAndValues(rawLog, 'rate_limit.updated', 'changes_requested', 'Float64') AS change
            WHERE eventName = 'rate_limit.updated'
                AND eventTime >= (
                    SELECT if(count() = 0, now(), min(eventTime))
                    FROM {{logs}}
                    WHERE eventName = 'rate_limit.updated' AND {{recent}}
                ) - toIntervalDay({{uint "history_days"}})
        )
        WINDOW w AS (PARTITION BY workspaceID, sourceID, entity, field ORDER BY eventTime, eventID
                     ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
    WHERE {{recent}}
    GROUP BY workspaceID, sourceID, entity, eventTime, eventID
)
WHERE length(raised) > 0 OR (NOT anyBaseline AND {{bool "report_without_baseline"}})
