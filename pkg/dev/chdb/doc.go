// Package chdb fetches the embedded ClickHouse engine (libchdb.so) and binds it
// with purego, without cgo.
//
// The engine is the npm package @chdb/lib-linux-x64-gnu at [Version]; [EnsureLibrary]
// downloads it once into a per-user cache, verifying the registry's sha512
// integrity. [Open] loads the library and opens a [DB]: a pool of engine
// connections on one data directory.
//
// One data directory per process: the engine keeps global state, so while a
// [DB] is open, opening another one on a different directory fails with
// [ErrOtherPath]. Close the DB first to reopen elsewhere (or on the same
// directory, e.g. to test a restart).
//
// Traps this package handles (see docs/embedded-clickhouse.md):
//   - the engine installs its own handlers for SIGSEGV, SIGABRT and friends on
//     connect, after which even a recovered Go panic hangs the process. Open
//     disables them and restores Go's handlers around every connect;
//   - the query profiler (signal based) is turned off on every connection,
//     and async_insert is set to 0 (chdb defaults to 1; a ClickHouse server to 0);
//   - binary data inlined after FORMAT is silently cut at the first "\n\n"
//     byte pair, so binary inserts go through the streaming-insert API
//     ([Conn.Insert]).
package chdb
