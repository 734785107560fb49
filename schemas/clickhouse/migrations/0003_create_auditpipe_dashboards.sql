-- 0003: the audit charts of ClickHouse's own web page /dashboard, as
-- (dashboard, title, query) rows shaped like system.dashboards, so that
-- the page of any ClickHouse server (and of bin/chserver) opens them with
-- the search query
--   SELECT title, query FROM <database>.auditpipe_dashboards WHERE dashboard = 'auditpipe'
-- (`make run` prints a link that does this; docs/dashboards.md).
--
-- Each query returns (t, value) or (t, label, value) rows ordered by t, the
-- page's chart format; t is a Unix time. The page fills in the parameters
-- {rounding:UInt32} (bucket width in seconds) and {seconds:UInt32} (how far
-- back). Counts read the hourly counts openai_audit_counts (0002), so
-- buckets are at least an hour wide (greatest(rounding, 3600)) and every
-- event counts once; the delay chart reads the events; the findings
-- chart reads the detections' database, <database>_detections, the
-- loader's default (clickhouse.detections.database).
--
-- A view over constant rows: a later migration replaces the whole set with
-- CREATE OR REPLACE VIEW. Quoted with $$ … $$ (ClickHouse's heredoc
-- strings), so the queries keep their own single quotes.
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
GROUP BY t, severity ORDER BY t, severity$$)
);
