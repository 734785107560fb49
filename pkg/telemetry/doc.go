// Package telemetry gives every service the same logs and admin endpoints:
// an slog logger configured from LogConfig, and an admin HTTP server with
// /metrics (from the registry passed in, never the global one), /healthz
// (the process is alive), /readyz (every registered dependency check passes)
// and, when enabled, /debug/pprof. The gauge auditpipe_ready mirrors /readyz
// for alerting: the admin server evaluates the checks every 10 s (each bounded
// by admin.check_timeout) and on every /readyz request.
package telemetry
