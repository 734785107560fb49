-- id: credential_creation_burst
-- title: Burst of credential creation by one actor
-- severity: MEDIUM
-- mitre:
--   id: T1136.003
--   name: "Create Account: Cloud Account"
-- description: >
--   One actor creates at least min_creations credentials or footholds (API
--   keys, service accounts, invitations, projects, external keys, workload
--   identity mappings: event_names) within window_hours. Attackers with a
--   foothold mint extra credentials to keep access. The window slides over
--   eventTime; a finding is keyed by the actor and the fixed window_hours
--   interval (UTC days by default) in which the threshold was crossed. Events
--   without an actor are attributed to '(no actor)'.
-- false_positives:
--   - Onboarding a team, or infrastructure-as-code creating keys and service accounts for new environments.
-- knobs:
--   - name: min_creations
--     type: uint
--     default: "3"
--     description: creations by one actor that make a finding
--   - name: window_hours
--     type: uint
--     default: "24"
--     description: length of the sliding window (and of the finding's interval)
--   - name: event_names
--     type: list
--     default: api_key.created,service_account.created,invite.sent,project.created,external_key.registered,workload_identity_provider_mapping.created,tenant.admin_api_key.created,tenant.project_api_key.created
--     description: event types that create a credential
SELECT
    'MEDIUM' AS severity,
    workspaceID,
    sourceID,
    entity,
    toStartOfInterval(eventTime, toIntervalHour({{uint "window_hours"}}), 'UTC') AS windowStart,
    windowStart + toIntervalHour({{uint "window_hours"}}) AS windowEnd,
    min(windowFirst) AS firstEventTime,
    max(eventTime) AS lastEventTime,
    arraySort(groupUniqArrayArray(windowEvents)) AS events,
    arrayMap(e -> e.2, events) AS eventIDs,
    map(
        'creations', toString(length(events)),
        'by_type', arrayStringConcat(arrayMap(n -> n || '=' || toString(countEqual(arrayMap(e -> e.3, events), n)),
            arraySort(arrayDistinct(arrayMap(e -> e.3, events)))), ',')
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        {{actor}} AS entity,
        eventTime,
        groupArray((eventTime, eventID, eventName)) OVER w AS windowEvents,
        count() OVER w AS creations,
        min(eventTime) OVER w AS windowFirst
    FROM {{logs}} FINAL
    WHERE has({{list "event_names"}}, eventName) AND {{recent}}
    WINDOW w AS (PARTITION BY workspaceID, sourceID, entity ORDER BY eventTime
                 RANGE BETWEEN {{uint "window_hours"}} * 3600 PRECEDING AND CURRENT ROW)
)
WHERE creations >= {{uint "min_creations"}}
GROUP BY workspaceID, sourceID, entity, windowStart
