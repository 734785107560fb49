package chdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/auditpipe/auditpipe/pkg/dev/npmfetch"
)

var (
	// ErrLibraryNotFound means no libchdb.so at the configured path; run
	// `make deps` or set CHDB_LIB_PATH.
	ErrLibraryNotFound = errors.New("libchdb not found")
	// ErrOtherPath means a DB is already open in this process on a different
	// data directory. The engine supports one data directory per process.
	ErrOtherPath = errors.New("another data directory is open in this process")
	// ErrClosed is returned by operations on a closed DB.
	ErrClosed = errors.New("chdb: closed")
)

// engine is the process-wide state of the embedded engine: the library can be
// loaded once and the engine runs on one data directory at a time. It is
// package state because the C library itself is process state.
var engine struct {
	mu          sync.Mutex
	lib         *lib
	signalsDone bool
	path        string // data directory of the open DBs
	open        int    // number of open DBs
}

// Options configures [Open].
type Options struct {
	// LibPath is the libchdb.so to load; empty means [LibraryPath].
	LibPath string
	// Path is the engine's data directory (required). Every DB open at the
	// same time in a process must use the same Path.
	Path string
	// PoolSize is the number of engine connections; queries on different
	// connections run in parallel. Zero means 4.
	PoolSize int
}

// DB is a pool of engine connections on one data directory. It is safe for
// concurrent use.
type DB struct {
	lib   *lib
	path  string
	conns []*Conn
	free  chan *Conn

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// Open loads the library (once per process), disables the engine's signal
// handlers while keeping Go's, and opens PoolSize connections on opts.Path,
// each with the signal-based query profiler turned off and async_insert=0
// (a ClickHouse server's default; chdb's is 1). It fails with
// [ErrOtherPath] if another DB is open on a different directory and with
// [ErrLibraryNotFound] if the library is missing.
func Open(opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("opening chdb: Options.Path is required")
	}
	if opts.PoolSize < 0 {
		return nil, fmt.Errorf("opening chdb: negative PoolSize %d", opts.PoolSize)
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = 4
	}
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("opening chdb: resolving path: %w", err)
	}
	libPath := opts.LibPath
	if libPath == "" {
		p, ok := LibraryPath()
		if !ok {
			return nil, fmt.Errorf("opening chdb at %q: %w (run `make deps` or set %s)", p, ErrLibraryNotFound, LibPathEnv)
		}
		libPath = p
	} else if !npmfetch.Exists(libPath) {
		return nil, fmt.Errorf("opening chdb at %q: %w", libPath, ErrLibraryNotFound)
	}

	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.lib == nil {
		l, err := loadLib(libPath)
		if err != nil {
			return nil, err
		}
		engine.lib = l
	}
	l := engine.lib
	if engine.open > 0 && engine.path != path {
		return nil, fmt.Errorf("opening chdb on %s: %w (%s)", path, ErrOtherPath, engine.path)
	}
	if !engine.signalsDone {
		snap := saveSignals()
		l.setSignalHandlersEnabled(0)
		snap.restore()
		engine.signalsDone = true
	}

	db := &DB{lib: l, path: path, free: make(chan *Conn, opts.PoolSize), closed: make(chan struct{})}
	for i := range opts.PoolSize {
		c, err := db.connect(i)
		if err != nil {
			db.closeConns()
			return nil, err
		}
		db.conns = append(db.conns, c)
		db.free <- c
	}
	engine.path = path
	engine.open++
	return db, nil
}

// connSettings is applied on every new connection: the signal-based query
// profiler off, and synchronous inserts as on a ClickHouse server (chdb
// defaults to async_insert=1, which routes every INSERT through the
// asynchronous-insert queue).
const connSettings = "SET query_profiler_real_time_period_ns = 0, query_profiler_cpu_time_period_ns = 0, async_insert = 0"

func (db *DB) connect(id int) (*Conn, error) {
	argv, keep := cStrings([]string{"clickhouse", "--path=" + db.path})
	snap := saveSignals()
	ptr := db.lib.connect(int32(len(keep)), &argv[0])
	snap.restore()
	runtime.KeepAlive(keep)
	if ptr == nil || *ptr == nil {
		return nil, fmt.Errorf("connecting to engine on %s: chdb_connect failed", db.path)
	}
	c := &Conn{db: db, id: id, ptr: ptr, handle: *ptr}
	if err := c.Exec(connSettings); err != nil {
		db.lib.closeConn(ptr)
		return nil, fmt.Errorf("applying connection settings: %w", err)
	}
	return c, nil
}

// Path returns the absolute data directory.
func (db *DB) Path() string { return db.path }

// PoolSize returns the number of connections.
func (db *DB) PoolSize() int { return len(db.conns) }

// Version returns the library's chdb_version() (e.g. "26.7.3").
func (db *DB) Version() string { return db.lib.version() }

// Acquire takes a free connection, blocking until one is released, ctx is
// done or the DB is closed. The caller owns the Conn until [Conn.Release].
func (db *DB) Acquire(ctx context.Context) (*Conn, error) {
	select {
	case <-db.closed:
		return nil, ErrClosed
	default:
	}
	select {
	case c := <-db.free:
		return c, nil
	case <-db.closed:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close waits until every connection is released (or ctx is done), then
// closes them all. When the last DB of the process closes, the engine shuts
// down and another data directory may be opened. Calling Close again returns
// the first result.
func (db *DB) Close(ctx context.Context) error {
	db.closeOnce.Do(func() {
		close(db.closed)
		for range db.conns {
			select {
			case <-db.free:
			case <-ctx.Done():
				db.closeErr = fmt.Errorf("closing chdb: waiting for connections: %w", ctx.Err())
				return // leave the engine open rather than close under a running query
			}
		}
		db.closeConns()
		engine.mu.Lock()
		engine.open--
		engine.mu.Unlock()
	})
	return db.closeErr
}

func (db *DB) closeConns() {
	for _, c := range db.conns {
		db.lib.closeConn(c.ptr)
	}
	db.conns = db.conns[:0]
}

// Conn is one engine connection: its own session (current database, SET
// settings). A Conn runs one statement at a time and must not be used
// concurrently.
type Conn struct {
	db     *DB
	id     int
	ptr    *unsafe.Pointer // chdb_connection*
	handle unsafe.Pointer  // chdb_connection
}

// ID returns the connection's index in its pool, in [0, PoolSize).
func (c *Conn) ID() int { return c.id }

// Release returns the connection to the pool. The Conn must not be used
// afterwards.
func (c *Conn) Release() { c.db.free <- c }

// Exec runs a statement and discards its output.
func (c *Conn) Exec(query string) error {
	r, err := c.Query(query, "TabSeparated", nil)
	if err != nil {
		return err
	}
	r.Close()
	return nil
}

// Query runs one statement. format is the output format used when the query
// has no FORMAT clause. params binds server-side {name:Type} placeholders
// (may be nil). The query text may hold any bytes, but inline INSERT data
// after FORMAT is cut by the engine at the first "\n\n": use [Conn.Insert]
// for INSERT data. The caller must Close the Result.
func (c *Conn) Query(query, format string, params map[string]string) (*Result, error) {
	l := c.db.lib
	var r unsafe.Pointer
	if len(params) == 0 {
		r = l.queryN(c.handle, strPtr(query), uintptr(len(query)), strPtr(format), uintptr(len(format)))
	} else {
		p := newCParams(params)
		r = l.queryWithParamsN(c.handle, strPtr(query), uintptr(len(query)), strPtr(format), uintptr(len(format)),
			&p.names[0], &p.nameLens[0], &p.values[0], &p.valueLens[0], uintptr(len(p.names)))
		runtime.KeepAlive(p)
	}
	runtime.KeepAlive(query)
	runtime.KeepAlive(format)
	if r == nil {
		return nil, &Error{Code: 1001, Message: "chdb_query_n returned no result"}
	}
	if msg := l.resultError(r); msg != "" {
		l.destroyQueryResult(r)
		return nil, newError(msg)
	}
	return &Result{lib: l, ptr: r}, nil
}

// Insert starts a binary-safe streaming INSERT: query is the INSERT statement
// without FORMAT or data (e.g. "INSERT INTO t (a, b)"), format the input
// format of the data written to the returned [Insert]. params binds
// {name:Type} placeholders (may be nil). The Conn accepts no other statement
// until the Insert is closed.
func (c *Conn) Insert(query, format string, params map[string]string) (*Insert, error) {
	l := c.db.lib
	var s unsafe.Pointer
	if len(params) == 0 {
		s = l.streamInsertN(c.handle, strPtr(query), uintptr(len(query)), strPtr(format), uintptr(len(format)))
	} else {
		p := newCParams(params)
		s = l.streamInsertWithParamsN(c.handle, strPtr(query), uintptr(len(query)), strPtr(format), uintptr(len(format)),
			&p.names[0], &p.nameLens[0], &p.values[0], &p.valueLens[0], uintptr(len(p.names)))
		runtime.KeepAlive(p)
	}
	runtime.KeepAlive(query)
	runtime.KeepAlive(format)
	if s == nil {
		return nil, &Error{Code: 1001, Message: "chdb_stream_insert_n returned no stream"}
	}
	if msg := l.streamInsertError(s); msg != "" {
		l.destroyInsertStream(s)
		c.releaseTables()
		return nil, newError(msg)
	}
	return &Insert{lib: l, conn: c, s: s}, nil
}

// Result is the materialized output of a query, held in engine memory until
// Close.
type Result struct {
	lib *lib
	ptr unsafe.Pointer
}

// Bytes returns the output; the slice is valid until Close and must not be
// modified.
func (r *Result) Bytes() []byte {
	n := r.lib.resultLength(r.ptr)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(r.lib.resultBuffer(r.ptr)), n)
}

// Stats reports the result's counters.
func (r *Result) Stats() Stats {
	return Stats{
		Elapsed:      time.Duration(r.lib.resultElapsed(r.ptr) * float64(time.Second)),
		RowsRead:     r.lib.resultRowsRead(r.ptr),
		BytesRead:    r.lib.resultBytesRead(r.ptr),
		RowsWritten:  r.lib.resultRowsWritten(r.ptr),
		BytesWritten: r.lib.resultBytesWritten(r.ptr),
	}
}

// Close frees the result. Calling it twice is a no-op.
func (r *Result) Close() {
	if r.ptr != nil {
		r.lib.destroyQueryResult(r.ptr)
		r.ptr = nil
	}
}

// Stats are a statement's engine-side counters.
type Stats struct {
	Elapsed      time.Duration
	RowsRead     uint64
	BytesRead    uint64
	RowsWritten  uint64
	BytesWritten uint64
}

// Insert is an open streaming INSERT. Write data with Write (any chunking is
// fine), then call Done to commit; Close always, to free the stream (it
// cancels an uncommitted insert) and to release the engine's hold on the
// table after a failed one. Not safe for concurrent use.
type Insert struct {
	lib       *lib
	conn      *Conn
	s         unsafe.Pointer
	done      bool
	committed bool // Done succeeded
}

// Write appends p to the insert. It may block while the engine applies
// backpressure. The engine copies p.
func (w *Insert) Write(p []byte) (int, error) {
	if w.s == nil || w.done {
		return 0, errors.New("chdb: write on finished insert")
	}
	for off := 0; off < len(p); {
		// Append in chunks that fit any size_t and keep each call bounded.
		n := min(len(p)-off, math.MaxInt32)
		if w.lib.streamAppend(w.s, &p[off], uintptr(n)) != 0 {
			return off, w.err("appending insert data")
		}
		off += n
	}
	runtime.KeepAlive(p)
	return len(p), nil
}

// Done commits the insert and returns its counters.
func (w *Insert) Done() (Stats, error) {
	if w.s == nil || w.done {
		return Stats{}, errors.New("chdb: insert already finished")
	}
	w.done = true
	r := w.lib.streamDone(w.s)
	if r == nil {
		return Stats{}, w.err("finishing insert")
	}
	defer w.lib.destroyQueryResult(r)
	if msg := w.lib.resultError(r); msg != "" {
		return Stats{}, newError(msg)
	}
	res := Result{lib: w.lib, ptr: r}
	w.committed = true
	return res.Stats(), nil
}

// releaseQuery is run on the connection after an insert that did not commit.
const releaseQuery = "SELECT 1"

// Close frees the stream, cancelling it if Done was not called. Calling it
// twice is a no-op.
//
// Engine bug worked around here: after a streaming insert that failed (a
// rejected Done, a parse error) or was cancelled, the connection keeps the
// insert's query state, and with it a reference to the target table, until
// it runs its next statement, even after chdb_destroy_insert_stream. Until
// then DROP TABLE/DATABASE ... SYNC on any other connection waits for the
// table forever. Close therefore runs a trivial statement on the connection
// after any insert that did not commit.
func (w *Insert) Close() {
	if w.s == nil {
		return
	}
	w.lib.destroyInsertStream(w.s)
	w.s = nil
	if !w.committed {
		w.conn.releaseTables()
	}
}

// releaseTables runs a trivial statement so the connection drops the query
// state of a failed insert (see [Insert.Close]).
func (c *Conn) releaseTables() {
	if r, err := c.Query(releaseQuery, "TabSeparated", nil); err == nil {
		r.Close()
	}
}

func (w *Insert) err(op string) error {
	if msg := w.lib.streamInsertError(w.s); msg != "" {
		return newError(msg)
	}
	return &Error{Code: 1001, Message: op + ": stream failed"}
}

// Error is an engine exception. Message is the engine's text, usually
// "Code: N. DB::Exception: ... (NAME) ...".
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Name returns the exception's symbolic name, e.g. "UNKNOWN_TABLE", when the
// message carries one.
func (e *Error) Name() string {
	// Messages end with "(NAME)" or "(NAME) (version V)".
	msg := strings.TrimSpace(e.Message)
	if i := strings.LastIndex(msg, " (version "); i >= 0 {
		msg = msg[:i]
	}
	if !strings.HasSuffix(msg, ")") {
		return ""
	}
	i := strings.LastIndex(msg, "(")
	if i < 0 {
		return ""
	}
	name := msg[i+1 : len(msg)-1]
	for _, r := range name {
		if (r < 'A' || r > 'Z') && r != '_' && (r < '0' || r > '9') {
			return ""
		}
	}
	return name
}

// newError parses "Code: N." from the engine's message; messages without a
// code get 1001 (STD_EXCEPTION).
func newError(msg string) *Error {
	msg = strings.TrimRight(msg, "\n")
	code := 1001
	if rest, ok := strings.CutPrefix(strings.TrimSpace(msg), "Code: "); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				code = n
			}
		}
	}
	return &Error{Code: code, Message: msg}
}
