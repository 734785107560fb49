-- id: api_key_elevated_scopes
-- title: API key created or updated with elevated scopes
-- severity: HIGH
-- mitre:
--   id: T1098.001
--   name: "Account Manipulation: Additional Cloud Credentials"
-- description: >
--   An api_key.created or api_key.updated grants at least one scope of
--   elevated_scopes. Scopes are read where the API puts them: data.scopes on
--   creation and changes_requested.scopes on update (both are read for both
--   types, so a payload that moves is still covered). Matching is exact and
--   case-insensitive. The entity is the key's tracking id.
-- false_positives:
--   - An administrator deliberately creating an automation key with broad scopes; require a ticket and prefer restricted keys.
-- knobs:
--   - name: elevated_scopes
--     type: list
--     default: all,admin,organization:write,api_keys:write,models:write
--     description: scopes that make a finding (comma-separated, case-insensitive)
SELECT
    'HIGH' AS severity,
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
        'scopes', arrayStringConcat(scopes, ','),
        'elevated_scopes', arrayStringConcat(elevated, ','),
        'actor', {{actor}},
        'project_id', projectID
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventName,
        eventTime,
        eventID,
        projectID,
        actorUserEmail,
        serviceAccountID,
        apiKeyID,
        JSONExtractString(rawLog, eventName, 'id') AS entity,
        arrayDistinct(arrayConcat(
            JSONExtract(rawLog, eventName, 'data', 'scopes', 'Array(String)'),
            JSONExtract(rawLog, eventName, 'changes_requested', 'scopes', 'Array(String)'))) AS scopes,
        arrayFilter(s -> has({{list "elevated_scopes"}}, lower(s)), scopes) AS elevated
    FROM {{logs}} FINAL
    WHERE eventName IN ('api_key.created', 'api_key.updated') AND {{recent}}
)
WHERE notEmpty(elevated)
