-- id: privileged_role_assigned
-- title: Owner or admin role assigned
-- severity: CRITICAL
-- mitre:
--   id: T1098.003
--   name: "Account Manipulation: Additional Cloud Roles"
-- description: >
--   A principal receives a role matching role_pattern (owner or admin by
--   default). CRITICAL when it is the organization owner role (user.added
--   with data.role, user.updated with changes_requested.role: the
--   organization's roles are owner and reader); HIGH for a project-level owner
--   of a service account (service_account.created / .updated), an invitation
--   carrying the owner role (invite.sent data.role; not effective until
--   accepted) and a role assignment whose payload names a matching role
--   (role.assignment.created: the API documents no role name in that payload,
--   so only role_name or role fields, if present, are read). The entity is the
--   principal that received the role (user id, service account id, invited
--   email or principal_id).
-- false_positives:
--   - Planned onboarding of a new administrator, or a break-glass account being provisioned; correlate with a change ticket.
--   - Service accounts created as project owners by infrastructure-as-code.
-- knobs:
--   - name: role_pattern
--     type: string
--     default: (?i)^(owner|admin|.*[_ -]admin|admin[_ -].*|organization[_ -]owner)$
--     description: RE2 regular expression the role name must match
SELECT
    if(eventName IN ('user.added', 'user.updated'), 'CRITICAL', 'HIGH') AS severity,
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
        'role', role,
        'scope', if(eventName IN ('user.added', 'user.updated'), 'organization', if(eventName = 'invite.sent', 'invitation', 'project')),
        'granted_by', {{actor}},
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
        multiIf(
            eventName = 'invite.sent', lower(JSONExtractString(rawLog, eventName, 'data', 'email')),
            eventName = 'role.assignment.created', JSONExtractString(rawLog, eventName, 'principal_id'),
            JSONExtractString(rawLog, eventName, 'id')) AS entity,
        multiIf(
            eventName IN ('user.added', 'service_account.created', 'invite.sent'), JSONExtractString(rawLog, eventName, 'data', 'role'),
            eventName IN ('user.updated', 'service_account.updated'), JSONExtractString(rawLog, eventName, 'changes_requested', 'role'),
            coalesce(nullIf(JSONExtractString(rawLog, eventName, 'role_name'), ''), JSONExtractString(rawLog, eventName, 'role'))) AS role
    FROM {{logs}} FINAL
    WHERE eventName IN ('user.added', 'user.updated', 'service_account.created', 'service_account.updated', 'invite.sent', 'role.assignment.created')
        AND {{recent}}
)
WHERE role != '' AND match(role, {{str "role_pattern"}})
