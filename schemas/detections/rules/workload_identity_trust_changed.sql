-- id: workload_identity_trust_changed
-- title: Workload identity federation trust changed
-- severity: HIGH
-- mitre:
--   id: T1484.002
--   name: "Domain or Tenant Policy Modification: Trust Modification"
-- description: >
--   A workload identity provider or mapping is created, changed or removed:
--   an external identity provider (a CI system, a cloud) is trusted to obtain
--   OpenAI credentials without a key, so a new provider or a broadened mapping
--   lets outside workloads in. HIGH when a provider is created, MEDIUM for
--   every other change (workload_identity_provider*.*,
--   tenant.workload_identity.provider.*, .mapping.*, .binding.*). The entity
--   is the provider or mapping id.
-- false_positives:
--   - Setting up keyless deployment from CI, or adding a repository or environment to an existing mapping.
-- knobs: []
SELECT
    if(eventName IN ('workload_identity_provider.created', 'tenant.workload_identity.provider.created'), 'HIGH', 'MEDIUM') AS severity,
    workspaceID,
    sourceID,
    if(JSONExtractString(rawLog, eventName, 'id') != '', JSONExtractString(rawLog, eventName, 'id'), eventID) AS entity,
    eventTime AS windowStart,
    eventTime AS windowEnd,
    eventTime AS firstEventTime,
    eventTime AS lastEventTime,
    [eventID] AS eventIDs,
    map(
        'event', eventName,
        'provider_id', JSONExtractString(rawLog, eventName, 'identity_provider_id'),
        'actor', {{actor}},
        'project_id', projectID
    ) AS details
FROM {{logs}} FINAL
WHERE (startsWith(eventName, 'workload_identity_provider')
        OR match(eventName, '^tenant\\.workload_identity\\.(provider|mapping|binding)\\.'))
    AND {{recent}}
