-- id: org_security_settings_changed
-- title: Organization security settings changed
-- severity: HIGH
-- mitre:
--   id: T1562
--   name: Impair Defenses
-- description: >
--   A change to how the organization authenticates or what it records. From
--   organization.updated: any changes_requested key matching setting_pattern
--   (SSO, MFA, sessions, retention, audit or API call logging); HIGH when API
--   call logging is switched off (api_call_logging = disabled), MEDIUM
--   otherwise. From tenant-scoped events matching tenant_event_pattern (SSO
--   connections, authentication and session policies): HIGH for a deletion or
--   detachment, MEDIUM otherwise. The entity is the changed object's id (the
--   organization for organization.updated), else 'organization'.
-- false_positives:
--   - A planned SSO or retention change by the organization's owners.
--   - Switching API call logging between projects (MEDIUM) during a routine review.
-- knobs:
--   - name: setting_pattern
--     type: string
--     default: (?i)(sso|saml|oidc|mfa|2fa|two_factor|authenticat|password|session|retention|audit|logging|allowlist|scim|domain)
--     description: RE2 expression; organization.updated keys matching it are security settings
--   - name: tenant_event_pattern
--     type: string
--     default: ^tenant\.(sso_connection|sso|session_policy|policy|principal_authentication_policy|microsoft_entra_mapping)\.[a-z_.]+$
--     description: RE2 expression; tenant-scoped event types matching it are security setting changes
SELECT
    multiIf(
        eventName = 'organization.updated' AND JSONExtractString(rawLog, eventName, 'changes_requested', 'api_call_logging') = 'disabled', 'HIGH',
        eventName = 'organization.updated', 'MEDIUM',
        match(eventName, '\\.(deleted|detached|archived)$'), 'HIGH',
        'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(JSONExtractString(rawLog, eventName, 'id') != '', JSONExtractString(rawLog, eventName, 'id'), 'organization') AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'settings', arrayStringConcat(arrayMap(kv -> kv.1 || '=' || kv.2, settings), ';'),
        'actor', {{actor}}
    ) AS details
FROM
(
    SELECT
        workspaceID,
        sourceID,
        eventName,
        eventTime,
        eventID,
        rawLog,
        actorUserEmail,
        serviceAccountID,
        apiKeyID,
        arrayFilter(kv -> match(kv.1, {{str "setting_pattern"}}),
            JSONExtractKeysAndValuesRaw(rawLog, eventName, 'changes_requested')) AS settings
    FROM {{logs}} FINAL
    WHERE (eventName = 'organization.updated' OR match(eventName, {{str "tenant_event_pattern"}})) AND {{recent}}
)
WHERE eventName != 'organization.updated' OR notEmpty(settings)
