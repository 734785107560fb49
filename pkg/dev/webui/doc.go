// Package webui serves ClickHouse's own web pages, the SQL console /play
// and the charts page /dashboard, from the embedded engine, for development
// and tests only.
//
// The pages are not copied anywhere: they are NUL-terminated resources
// inside libchdb.so, found by their <title> and read from the library file
// (Pages). Both load uPlot and lz-string from a CDN; those scripts come from
// the npm registry instead, pinned by version and sha512 integrity, cached
// like libchdb under ${XDG_CACHE_HOME:-~/.cache}/auditpipe/npm
// (EnsureAssets), and served locally under /_assets/, so the pages work
// offline. Pages rewrites the CDN addresses to those local paths; nothing
// else in the pages changes.
package webui
