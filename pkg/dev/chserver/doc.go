// Package chserver serves the ClickHouse HTTP interface in front of the
// embedded engine of package chdb, for development and tests only.
//
// It implements the subset that clickhouse-go v2 (Protocol: clickhouse.HTTP)
// and curl users rely on: GET and POST on / with the query in the query
// parameter and/or the body, /ping, database, default_format, query_id,
// settings and param_* parameters, INSERT with data in the body in any input
// format (streamed into the engine's binary-safe insert API), ClickHouse error
// bodies and headers, gzip/deflate/br/zstd HTTP compression, ClickHouse's
// LZ4/ZSTD block framing (compress=1, decompress=1) and HTTP basic or
// X-ClickHouse-User/-Key authentication. Like ClickHouse it serves its web
// pages, the SQL console /play and the charts page /dashboard, taken from
// the engine library with their scripts served locally (package webui).
//
// # Native protocol revision: the handshake trick
//
// clickhouse-go asks for Native output with client_protocol_version=54460,
// which expects BlockInfo and a custom-serialization byte per column, while
// the engine writes revision-0 Native. Rather than transcode every result,
// the server answers clickhouse-go's connection handshake
// (SELECT displayName(), version(), revision(), timezone()) itself, encoded
// at the requested revision, with revision() = 0. clickhouse-go then decodes
// every later Native result of that connection at revision 0, which is
// exactly what the engine produces, so results pass through untouched. Only
// clients that send client_protocol_version without first running that
// handshake would misread results; clickhouse-go always runs it. Without
// client_protocol_version (curl, other clients) the handshake query runs in
// the engine like any other.
//
// # Deviations from ClickHouse
//
// Responses are HTTP-compressed whenever Accept-Encoding asks for it (no
// enable_http_compression needed); sessions (session_id), external tables,
// progress headers and readonly GET requests are not implemented. Results
// are materialized by the engine before they are sent.
package chserver
