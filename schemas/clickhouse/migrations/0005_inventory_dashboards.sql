-- 0005: the inventory and posture charts of ClickHouse's /dashboard page
-- (docs/dashboards.md, docs/inventory.md), added to the audit charts of
-- 0003: API keys by the day of their last use (creation when never used)
-- from openai_inventory_keys, the inventory's change rows per kind (the
-- daily baselines left out), the posture rules' findings, and audit_gap's
-- findings by the end of their window. The three windowed charts fill
-- their window with zeros (WITH FILL FROM … TO …), so that they draw before
-- the first inventory snapshot or finding (the page shows an error for an
-- empty result). The view is replaced whole.
CREATE OR REPLACE VIEW {{.Database}}.auditpipe_dashboards{{.OnCluster}}
AS SELECT dashboard, title, query
FROM values('dashboard String, title String, query String',
('auditpipe', 'Events per hour', $$SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, sum(events) AS events
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)
GROUP BY t ORDER BY t WITH FILL STEP greatest({rounding:UInt32}, 3600)$$),
('auditpipe', 'Logins by outcome', $$SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, if(eventName = 'login.failed', 'failed', 'succeeded') AS outcome, sum(events) AS logins
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND) AND eventName IN ('login.succeeded', 'login.failed')
GROUP BY t, outcome ORDER BY t, outcome$$),
('auditpipe', 'Events by type (top 6)', $$WITH top AS (SELECT eventType FROM {{.Database}}.openai_audit_counts WHERE hour >= now() - {seconds:UInt32} GROUP BY eventType ORDER BY sum(events) DESC LIMIT 6)
SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, eventType, sum(events) AS events
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND) AND eventType IN (SELECT eventType FROM top)
GROUP BY t, eventType ORDER BY t, eventType$$),
('auditpipe', 'Read-only and changing events', $$SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, if(readOnly, 'read-only', 'changing') AS kind, sum(events) AS events
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)
GROUP BY t, kind ORDER BY t, kind$$),
('auditpipe', 'API keys created, updated, deleted', $$SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, eventName, sum(events) AS events
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND) AND eventType = 'api_key'
GROUP BY t, eventName ORDER BY t, eventName$$),
('auditpipe', 'Admin and security changes', $$SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, sum(events) AS changes
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND) AND NOT readOnly
  AND match(eventType, '^(role|invite|user|ip_allowlist|scim|certificate|organization|group|service_account|project)')
GROUP BY t ORDER BY t WITH FILL STEP greatest({rounding:UInt32}, 3600)$$),
('auditpipe', 'Countries seen', $$SELECT toStartOfInterval(hour, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)::INT AS t, uniqExactIf(country, country != '') AS countries
FROM {{.Database}}.openai_audit_counts
WHERE hour >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL greatest({rounding:UInt32}, 3600) SECOND)
GROUP BY t ORDER BY t WITH FILL STEP greatest({rounding:UInt32}, 3600)$$),
('auditpipe', 'Collection delay (s): received minus happened', $$SELECT toStartOfInterval(eventTime, INTERVAL {rounding:UInt32} SECOND)::INT AS t, avg(receivedAt - eventTime) AS delay
FROM {{.Database}}.openai_audit_events
WHERE eventTime >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND)
GROUP BY t ORDER BY t$$),
('auditpipe', 'Detection findings by severity', $$SELECT toStartOfInterval(detectedAt, INTERVAL {rounding:UInt32} SECOND)::INT AS t, toString(severity) AS severity, count() AS findings
FROM {{.Database}}_detections.openai_audit_detections FINAL
WHERE detectedAt >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND)
GROUP BY t, severity ORDER BY t, severity$$),
('auditpipe', 'API keys by last use (now), per day', $$SELECT toStartOfInterval(greatest(lastUsedAt, createdAt), INTERVAL greatest({rounding:UInt32}, 86400) SECOND)::INT AS t, CAST(kind AS String) AS kind, count() AS keys
FROM {{.Database}}.openai_inventory_keys
GROUP BY t, kind ORDER BY t, kind$$),
('auditpipe', 'Inventory changes by kind', $$SELECT toStartOfInterval(snapshotAt, INTERVAL {rounding:UInt32} SECOND)::INT AS t, CAST(kind AS String) AS kind, count() AS changes
FROM {{.Database}}.openai_inventory_changes FINAL
WHERE snapshotAt >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND) AND NOT baseline
GROUP BY t, kind ORDER BY t WITH FILL FROM toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND)::INT TO now()::INT STEP {rounding:UInt32}, kind$$),
('auditpipe', 'Posture findings by rule', $$SELECT toStartOfInterval(detectedAt, INTERVAL {rounding:UInt32} SECOND)::INT AS t, CAST(rule AS String) AS rule, count() AS findings
FROM {{.Database}}_detections.openai_audit_detections FINAL
WHERE detectedAt >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND)
  AND rule IN ('api_key_unused', 'admin_api_key_long_lived', 'api_key_orphaned', 'owners_beyond_threshold', 'invite_pending_too_long', 'certificate_expiring', 'project_without_rate_limits')
GROUP BY t, rule ORDER BY t WITH FILL FROM toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND)::INT TO now()::INT STEP {rounding:UInt32}, rule$$),
('auditpipe', 'Audit gaps (changes the audit log did not report)', $$SELECT toStartOfInterval(windowEnd, INTERVAL {rounding:UInt32} SECOND)::INT AS t, count() AS gaps
FROM {{.Database}}_detections.openai_audit_detections FINAL
WHERE windowEnd >= toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND) AND rule = 'audit_gap'
GROUP BY t ORDER BY t WITH FILL FROM toStartOfInterval(now() - {seconds:UInt32}, INTERVAL {rounding:UInt32} SECOND)::INT TO now()::INT STEP {rounding:UInt32}$$)
);
