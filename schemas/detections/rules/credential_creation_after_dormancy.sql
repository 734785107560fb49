-- id: credential_creation_after_dormancy
-- title: Credential created by an actor dormant for credentials
-- severity: LOW
-- mitre:
--   id: T1098.001
--   name: "Account Manipulation: Additional Cloud Credentials"
-- description: >
--   A known actor (active in the log more than quiet_days before, within
--   history_days) that created no credential (event_names) during the
--   quiet_days before suddenly creates one: a dormant account put to use, or
--   a stolen session minting a key. Actors first seen within quiet_days are
--   not judged (onboarding); credential_creation_burst covers their bulk
--   creations. One finding per creation; events without an actor are
--   attributed to '(no actor)'.
-- false_positives:
--   - An administrator who creates keys a few times a year (rotation, a new project).
-- knobs:
--   - name: quiet_days
--     type: uint
--     default: "14"
--     description: days without any credential creation that make the actor dormant
--   - name: history_days
--     type: uint
--     default: "90"
--     description: how far back to look for the actor's earlier activity
--   - name: event_names
--     type: list
--     default: api_key.created,service_account.created,invite.sent,project.created,external_key.registered,workload_identity_provider_mapping.created,tenant.admin_api_key.created,tenant.project_api_key.created
--     description: event types that create a credential
SELECT
    'LOW' AS severity,
    workspaceID,
    sourceID,
    entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'first_seen', toString(firstSeen),
        'previous_creation', if(previousCreation = toDateTime(0), 'none', toString(previousCreation))
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        {{actor}} AS entity,
        eventName,
        eventTime,
        receivedAt,
        eventID,
        has({{list "event_names"}}, eventName) AS isCreation,
        min(eventTime) OVER actorHistory AS firstSeen,
        maxIf(eventTime, isCreation) OVER before AS previousCreation
    FROM {{logs}} FINAL
    WHERE {{actor}} IN (
            SELECT {{actor}} FROM {{logs}} WHERE has({{list "event_names"}}, eventName) AND {{recent}}
        )
        AND eventTime >= (
            SELECT if(count() = 0, now(), min(eventTime))
            FROM {{logs}}
            WHERE has({{list "event_names"}}, eventName) AND {{recent}}
        ) - toIntervalDay({{uint "history_days"}})
    WINDOW
        actorHistory AS (PARTITION BY workspaceID, sourceID, entity),
        before AS (PARTITION BY workspaceID, sourceID, entity ORDER BY eventTime
                   RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
WHERE isCreation AND {{recent}}
    AND previousCreation < eventTime - toIntervalDay({{uint "quiet_days"}})
    AND firstSeen < eventTime - toIntervalDay({{uint "quiet_days"}})
