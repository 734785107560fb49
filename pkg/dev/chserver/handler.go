package chserver

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/ClickHouse/ch-go/compress"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

// maxQuerySize bounds the query text read from a request (the statement of
// an INSERT with data; the whole body otherwise). Insert data is streamed.
const maxQuerySize = 1 << 20

// insertChunk is the size of the pieces appended to the engine's insert
// stream.
const insertChunk = 256 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxQuerySize) }}

// reserved URL parameters that are not settings.
var reserved = map[string]bool{
	"query": true, "database": true, "default_format": true, "query_id": true, "quota_key": true,
	"user": true, "password": true, "compress": true, "decompress": true, "client_protocol_version": true,
	"session_id": true, "session_timeout": true, "session_check": true, "buffer_size": true,
	"wait_end_of_query": true, "enable_http_compression": true, "http_zlib_compression_level": true,
	"network_compression_method": true, "network_zstd_compression_level": true,
	"add_http_cors_header": true, "send_progress_in_http_headers": true,
	"http_headers_progress_interval_ms": true, "role": true, "stacktrace": true, "_": true,
}

// request is a parsed HTTP request.
type request struct {
	query       string // query parameter
	database    string
	format      string // default output format
	queryID     string
	params      map[string]string // param_<name>
	settings    map[string]string
	compress    bool // compress=1: ClickHouse-framed response
	decompress  bool // decompress=1: ClickHouse-framed request body
	frameMethod compress.Method
	frameLevel  compress.Level
	revision    uint64 // client_protocol_version
}

func parseRequest(q url.Values) (*request, error) {
	req := &request{
		query:    q.Get("query"),
		database: q.Get("database"),
		format:   q.Get("default_format"),
		queryID:  q.Get("query_id"),
		params:   map[string]string{},
		settings: map[string]string{},
	}
	if req.format == "" {
		req.format = "TabSeparated"
	}
	req.compress = q.Get("compress") == "1"
	req.decompress = q.Get("decompress") == "1"
	m, err := frameMethod(q.Get("network_compression_method"))
	if err != nil {
		return nil, err
	}
	req.frameMethod = m
	if l := q.Get("network_zstd_compression_level"); l != "" && m == compress.ZSTD {
		n, err := strconv.ParseUint(l, 10, 32)
		if err != nil {
			return nil, newException(codeBadArguments, "BAD_ARGUMENTS", "bad network_zstd_compression_level %q", l)
		}
		req.frameLevel = compress.Level(n)
	}
	if v := q.Get("client_protocol_version"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, newException(codeBadArguments, "BAD_ARGUMENTS", "bad client_protocol_version %q", v)
		}
		req.revision = n
	}
	for k, vs := range q {
		if len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1]
		switch {
		case strings.HasPrefix(k, "param_"):
			req.params[strings.TrimPrefix(k, "param_")] = v
		case reserved[k] || strings.HasSuffix(k, "_format") || strings.HasSuffix(k, "_structure") || strings.HasSuffix(k, "_types"):
			// external-table and HTTP-only parameters are not settings
		default:
			if !validSettingName(k) {
				return nil, newException(115, "UNKNOWN_SETTING", "Setting %s is neither a builtin setting nor started with the prefix 'custom_'", k)
			}
			req.settings[k] = v
		}
	}
	return req, nil
}

// ServeHTTP implements the ClickHouse HTTP interface. It is safe for
// concurrent use; at most PoolSize queries run at once, the others wait for a
// connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ping":
		_, _ = io.WriteString(w, "Ok.\n")
		return
	case webui.Handles(r.URL.Path):
		s.web.ServeHTTP(w, r)
		return
	case r.URL.Path == "/" && r.Method == http.MethodOptions:
		// A browser's CORS preflight (the /play console pings with one).
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "origin, x-requested-with, x-clickhouse-format, x-clickhouse-user, x-clickhouse-key, authorization")
		w.WriteHeader(http.StatusNoContent)
		return
	case r.URL.Path == "/":
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprintf(w, "There is no handle %s\n\nUse / or /ping for health checks, /play for the SQL console, /dashboard for charts.\n", r.URL.Path)
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodGet && !q.Has("query") {
		_, _ = io.WriteString(w, "Ok.\n")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeException(w, newException(codeBadArguments, "BAD_ARGUMENTS", "Method %s is not allowed", r.Method))
		return
	}
	if err := s.authenticate(r, q); err != nil {
		writeException(w, err)
		return
	}
	req, err := parseRequest(q)
	if err != nil {
		writeException(w, err)
		return
	}
	if req.queryID == "" {
		req.queryID = newQueryID()
	}
	w.Header().Set("X-ClickHouse-Query-Id", req.queryID)
	w.Header().Set("X-ClickHouse-Server-Display-Name", s.hello.displayName)
	w.Header().Set("X-ClickHouse-Timezone", s.hello.timezone)
	if err := s.serveQuery(w, r, req); err != nil {
		ex := writeException(w, err)
		s.log.Debug("query failed", slog.String("query_id", req.queryID), slog.Int("code", ex.code), slog.String("error", ex.msg))
	}
}

func (s *Server) authenticate(r *http.Request, q url.Values) error {
	if s.cfg.User == "" && s.cfg.Password == "" {
		return nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		user, pass = r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
	}
	if user == "" && pass == "" {
		user, pass = q.Get("user"), q.Get("password")
	}
	if user == "" {
		user = "default"
	}
	wantUser := s.cfg.User
	if wantUser == "" {
		wantUser = "default"
	}
	uok := subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1
	pok := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password)) == 1
	if !uok || !pok {
		return newException(codeAuthFailed, "AUTHENTICATION_FAILED",
			"%s: Authentication failed: password is incorrect, or there is no user with such name", user)
	}
	return nil
}

// serveQuery reads the statement, runs it and writes the response. Errors
// returned have not written anything yet.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, req *request) error {
	src, done, err := s.source(r, req)
	if err != nil {
		return err
	}
	defer done()
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(src)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	head, err := br.Peek(maxQuerySize)
	full := errors.Is(err, bufio.ErrBufferFull) || err == nil
	if err != nil && !errors.Is(err, io.EOF) && !full {
		return newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "reading request: %v", err)
	}
	if ins, ok := parseInsert(head); ok {
		if _, err := br.Discard(ins.DataStart); err != nil {
			return newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "reading request: %v", err)
		}
		return s.insert(w, r, req, ins, br)
	}
	if full && len(head) == maxQuerySize {
		return newException(codeQueryTooLarge, "SYNTAX_ERROR", "Max query size exceeded: the query is longer than %d bytes", maxQuerySize)
	}
	sql := string(head)
	if strings.TrimSpace(sql) == "" {
		return newException(codeSyntaxEmpty, "SYNTAX_ERROR", "Empty query")
	}
	return s.runQuery(w, r, req, sql)
}

const codeSyntaxEmpty = 62

// source returns the statement stream: the query parameter, then (for POST)
// a newline and the decoded body, as ClickHouse joins them.
func (s *Server) source(r *http.Request, req *request) (io.Reader, func(), error) {
	if r.Method != http.MethodPost {
		return strings.NewReader(req.query), func() {}, nil
	}
	body, done, err := decodeBody(r.Body, r.Header.Get("Content-Encoding"))
	if err != nil {
		return nil, nil, err
	}
	if req.decompress {
		body = framedReader{compress.NewReader(body)}
	}
	if req.query == "" {
		return body, done, nil
	}
	return io.MultiReader(strings.NewReader(req.query+"\n"), body), done, nil
}

func (s *Server) acquire(r *http.Request, req *request) (*chdb.Conn, error) {
	c, err := s.db.Acquire(r.Context())
	if err != nil {
		return nil, newException(codeNetworkError, "NETWORK_ERROR", "acquiring connection: %v", err)
	}
	if err := s.sessions[c.ID()].prepare(c, req.database, req.settings); err != nil {
		c.Release()
		return nil, err
	}
	return c, nil
}

func (s *Server) insert(w http.ResponseWriter, r *http.Request, req *request, ins insertData, data io.Reader) error {
	c, err := s.acquire(r, req)
	if err != nil {
		return err
	}
	defer c.Release()
	stream, err := c.Insert(ins.Stmt, ins.Format, req.params)
	if err != nil {
		return err
	}
	defer stream.Close()
	buf := make([]byte, insertChunk)
	if _, err := io.CopyBuffer(stream, onlyReader{data}, buf); err != nil {
		var ce *chdb.Error
		if errors.As(err, &ce) {
			return err
		}
		return newException(codeCannotReadAllData, "CANNOT_READ_ALL_DATA", "reading insert data: %v", err)
	}
	st, err := stream.Done()
	if err != nil {
		return err
	}
	w.Header().Set("X-ClickHouse-Summary", summary(st))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// onlyReader hides WriterTo/ReaderFrom so CopyBuffer uses our buffer size.
type onlyReader struct{ io.Reader }

func (s *Server) runQuery(w http.ResponseWriter, r *http.Request, req *request, sql string) error {
	h := w.Header()
	var data []byte
	if req.revision > 0 && isHello(sql) {
		data = encodeHello(req.revision, s.hello)
		h.Set("X-ClickHouse-Format", "Native")
		h.Set("Content-Type", "application/octet-stream")
	} else {
		c, err := s.acquire(r, req)
		if err != nil {
			return err
		}
		res, err := c.Query(sql, req.format, req.params)
		c.Release() // the result does not need the connection
		if err != nil {
			return err
		}
		defer res.Close()
		data = res.Bytes()
		format := formatClause(sql)
		if format == "" {
			format = req.format
		}
		h.Set("X-ClickHouse-Format", format)
		h.Set("Content-Type", contentType(format))
		h.Set("X-ClickHouse-Summary", summary(res.Stats()))
	}
	if len(data) == 0 {
		h.Set("Content-Length", "0") // clickhouse-go reads this as an empty result
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if req.compress {
		w.WriteHeader(http.StatusOK)
		if err := writeFramed(w, data, req.frameMethod, req.frameLevel); err != nil {
			s.log.Debug("writing response", slog.Any("error", err))
		}
		return nil
	}
	if enc := acceptedEncoding(r.Header.Get("Accept-Encoding")); enc != "" {
		h.Set("Content-Encoding", enc)
		h.Add("Vary", "Accept-Encoding")
		w.WriteHeader(http.StatusOK)
		ew, err := encodeWriter(w, enc)
		if err == nil {
			_, err = ew.Write(data)
			err = errors.Join(err, ew.Close())
		}
		if err != nil {
			s.log.Debug("writing response", slog.Any("error", err))
		}
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

func contentType(format string) string {
	f := strings.ToLower(format)
	switch {
	case strings.HasPrefix(f, "tabseparated"), strings.HasPrefix(f, "tsv"):
		return "text/tab-separated-values; charset=UTF-8"
	case strings.HasPrefix(f, "csv"):
		return "text/csv; charset=UTF-8; header=absent"
	case strings.HasSuffix(f, "eachrow"), f == "jsonlines", f == "ndjson":
		return "application/x-ndjson; charset=UTF-8"
	case strings.HasPrefix(f, "json"):
		return "application/json; charset=UTF-8"
	case f == "native", strings.HasPrefix(f, "rowbinary"), f == "parquet", strings.HasPrefix(f, "arrow"), f == "orc", f == "avro":
		return "application/octet-stream"
	}
	return "text/plain; charset=UTF-8"
}

func summary(st chdb.Stats) string {
	return fmt.Sprintf(`{"read_rows":"%d","read_bytes":"%d","written_rows":"%d","written_bytes":"%d","total_rows_to_read":"0","result_rows":"%d","result_bytes":"%d","elapsed_ns":"%d"}`,
		st.RowsRead, st.BytesRead, st.RowsWritten, st.BytesWritten, st.RowsWritten, st.BytesWritten, st.Elapsed.Nanoseconds())
}

func newQueryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
