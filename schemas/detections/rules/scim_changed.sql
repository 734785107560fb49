-- id: scim_changed
-- title: SCIM provisioning switched on or off
-- severity: HIGH
-- mitre:
--   id: T1098
--   name: Account Manipulation
-- description: >
--   scim.disabled (HIGH): the identity provider no longer provisions and
--   deprovisions members, so people removed from the directory keep their
--   access. scim.enabled (LOW): provisioning now follows the directory, worth
--   knowing. tenant.scim.deletion.requested (HIGH) requests the removal of
--   the SCIM directory. The entity is the payload's id (the organization),
--   else 'organization'.
-- false_positives:
--   - Migrating to another identity provider, or a planned SCIM reconfiguration.
-- knobs: []
SELECT
    if(eventName = 'scim.enabled', 'LOW', 'HIGH') AS severity,
    workspaceID,
    sourceID,
    if(JSONExtractString(rawLog, eventName, 'id') != '', JSONExtractString(rawLog, eventName, 'id'), 'organization') AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map('event', eventName, 'actor', {{actor}}) AS details
FROM {{logs}} FINAL
WHERE eventName IN ('scim.enabled', 'scim.disabled', 'tenant.scim.deletion.requested') AND {{recent}}
