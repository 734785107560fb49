-- id: project_without_rate_limits
-- title: Project without the rate limits the policy expects
-- severity: LOW
-- mitre:
--   id: T1496
--   name: Resource Hijacking
-- description: >
--   An active project whose id or name matches project_pattern and that lists
--   no rate limit (max_requests_per_1_minute 0), or none at most
--   max_requests_per_1_minute requests a minute, in the inventory now. A
--   stolen key of an unlimited project can spend the organization's whole
--   quota. One finding per project (windowStart is when the inventory first
--   listed it). Set project_pattern to the projects your policy covers
--   (an RE2 expression; the default covers every project).
-- false_positives:
--   - Sandbox projects without keys.
-- knobs:
--   - name: project_pattern
--     type: string
--     default: ".*"
--     description: projects (id or name, RE2) the policy covers
--   - name: max_requests_per_1_minute
--     type: uint
--     default: "0"
--     description: a rate limit at or below this many requests a minute satisfies the policy (0, any configured limit does)
SELECT
    'LOW' AS severity,
    p.workspaceID AS workspaceID,
    p.sourceID AS sourceID,
    p.objectID AS entity,
    toDateTime(p.firstSeenAt) AS windowStart,
    toDateTime(p.seenAt) AS windowEnd,
    toDateTime(p.firstSeenAt) AS firstEventTime,
    toDateTime(p.seenAt) AS lastEventTime,
    CAST([], 'Array(String)') AS eventIDs,
    map('name', JSONExtractString(p.object, 'name'), 'rate_limits', toString(r.limits), 'lowest_requests_per_minute', toString(r.lowest)) AS details
FROM {{inventory}} AS p
LEFT JOIN
(
    SELECT workspaceID, sourceID, projectID, count() AS limits, min(JSONExtractUInt(object, 'max_requests_per_1_minute')) AS lowest
    FROM {{inventory}}
    WHERE kind = 'project_rate_limit'
    GROUP BY workspaceID, sourceID, projectID
) AS r ON r.workspaceID = p.workspaceID AND r.sourceID = p.sourceID AND r.projectID = p.objectID
WHERE p.kind = 'project' AND JSONExtractString(p.object, 'status') = 'active'
    AND (match(p.objectID, {{str "project_pattern"}}) OR match(JSONExtractString(p.object, 'name'), {{str "project_pattern"}}))
    AND (r.limits = 0 OR ({{uint "max_requests_per_1_minute"}} > 0 AND r.lowest > {{uint "max_requests_per_1_minute"}}))
    AND (p.workspaceID, p.sourceID) IN (SELECT workspaceID, sourceID FROM {{inventorySnapshots}} WHERE snapshotAt >= now() - toIntervalMinute({{uint "lookback_minutes"}}))
