-- id: ip_allowlist_changed
-- title: IP allowlist changed
-- severity: CRITICAL
-- mitre:
--   id: T1562.007
--   name: "Impair Defenses: Disable or Modify Cloud Firewall"
-- description: >
--   A change to the organization's IP allowlists. CRITICAL when an allowlist
--   is deleted (ip_allowlist.deleted) or deactivated
--   (ip_allowlist.config.deactivated): the network restriction is gone. HIGH
--   when one is updated (ip_allowlist.updated: the allowed ranges changed).
--   MEDIUM when one is created or activated. One finding per allowlist and
--   event; config events name several allowlists (configs[]), each its own
--   finding. The entity is the allowlist id (the event id when the payload
--   names none).
-- false_positives:
--   - Planned network changes (a new office, VPN or CI range); correlate with a change ticket.
-- knobs: []
SELECT
    multiIf(
        eventName IN ('ip_allowlist.deleted', 'ip_allowlist.config.deactivated'), 'CRITICAL',
        eventName = 'ip_allowlist.updated', 'HIGH',
        'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(target.1 != '', target.1, eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'name', target.2,
        'allowed_ips', arrayStringConcat(JSONExtract(rawLog, eventName, 'allowed_ips', 'Array(String)'), ','),
        'actor', {{actor}}
    ) AS details
FROM {{logs}} FINAL
LEFT ARRAY JOIN
    if(startsWith(eventName, 'ip_allowlist.config.'),
        JSONExtract(rawLog, eventName, 'configs', 'Array(Tuple(id String, name String))'),
        [CAST((JSONExtractString(rawLog, eventName, 'id'), JSONExtractString(rawLog, eventName, 'name')), 'Tuple(id String, name String)')]) AS target
WHERE eventName IN ('ip_allowlist.created', 'ip_allowlist.updated', 'ip_allowlist.deleted',
                    'ip_allowlist.config.activated', 'ip_allowlist.config.deactivated')
    AND {{recent}}
