-- id: certificate_changed
-- title: mTLS certificate changed
-- severity: HIGH
-- mitre:
--   id: T1556
--   name: Modify Authentication Process
-- description: >
--   A change to the organization's mutual-TLS certificates, which decide which
--   clients may authenticate. HIGH when certificates are activated (a new
--   trust anchor takes effect), deactivated or deleted (enforcement may be
--   weakened); MEDIUM when one is uploaded or renamed (certificate.created,
--   certificate.updated). One finding per certificate and event
--   (certificates.activated and .deactivated name several). The entity is
--   the certificate id.
-- false_positives:
--   - Scheduled certificate rotation (a created, an activated and a deactivated within minutes, by the usual administrator).
-- knobs: []
SELECT
    if(eventName IN ('certificate.created', 'certificate.updated'), 'MEDIUM', 'HIGH') AS severity,
    workspaceID,
    sourceID,
    if(cert.1 != '', cert.1, eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map('event', eventName, 'name', cert.2, 'actor', {{actor}}) AS details
FROM {{logs}} FINAL
LEFT ARRAY JOIN
    if(startsWith(eventName, 'certificates.'),
        JSONExtract(rawLog, eventName, 'certificates', 'Array(Tuple(id String, name String))'),
        [CAST((JSONExtractString(rawLog, eventName, 'id'), JSONExtractString(rawLog, eventName, 'name')), 'Tuple(id String, name String)')]) AS cert
WHERE eventName IN ('certificate.created', 'certificate.updated', 'certificate.deleted',
                    'certificates.activated', 'certificates.deactivated')
    AND {{recent}}
