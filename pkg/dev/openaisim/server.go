package openaisim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ListPath is the audit-log endpoint's path.
const ListPath = "/v1/organization/audit_logs"

// ControlPrefix is the path prefix of the HTTP control API.
const ControlPrefix = "/_sim/"

// RequestLog records one request to the API (control requests are not
// recorded).
type RequestLog struct {
	// Seq numbers every recorded request from 1.
	Seq int `json:"seq"`
	// Number is the request's number among authenticated audit-log
	// requests (what Match.Request and Match.Every count), 0 otherwise.
	Number    int       `json:"number,omitempty"`
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Query     string    `json:"query,omitempty"`
	RequestID string    `json:"request_id"`
	// Key is the bearer key, redacted to its prefix and last four characters.
	Key    string `json:"key,omitempty"`
	Status int    `json:"status"`
	// Fault is the fault applied, "" for none.
	Fault FaultKind `json:"fault,omitempty"`
	// Items is the number of items in a 200 page.
	Items    int           `json:"items,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Handler serves the audit-log endpoint and, under ControlPrefix, the
// control API.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	s.registerControl(mux)
	mux.HandleFunc("/", s.serveAPI)
	return mux
}

// statusRecorder captures the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serveAPI answers one API request and records it (with its status and
// duration, also when a fault aborts the connection). Only GET ListPath
// exists; other requests get the API's 404.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1)
	defer s.wg.Done()
	start := time.Now()
	rec := newRequestLog(r, s.cfg.Now())
	sw := &statusRecorder{ResponseWriter: w}
	defer func() {
		rec.Status, rec.Duration = sw.status, time.Since(start)
		s.record(rec)
	}()
	h := sw.Header()
	h.Set("x-request-id", rec.RequestID)
	h.Set("openai-version", "2020-10-01")

	if s.serveInventory(sw, r) {
		return
	}
	if r.URL.Path != ListPath || r.Method != http.MethodGet {
		writeError(sw, &apiError{
			status:  http.StatusNotFound,
			message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path),
			typ:     "invalid_request_error",
		})
		return
	}
	fault, answered := s.admit(sw, r, rec)
	if answered {
		return
	}
	params, apiErr := parseListParams(r.URL.RawQuery)
	if apiErr != nil {
		writeError(sw, apiErr)
		return
	}
	body, ids := s.list(params)
	rec.Items = len(ids)
	if fault != nil {
		if body, answered = s.distortList(sw, r, *fault, body); answered {
			return
		}
	}
	s.countServed(ids)
	writeList(sw, body, start)
}

// newRequestLog starts the record of r, received at now, with a fresh
// random request id.
func newRequestLog(r *http.Request, now time.Time) *RequestLog {
	return &RequestLog{
		Time:      now,
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.RawQuery,
		RequestID: fmt.Sprintf("req_%016x%016x", rand.Uint64(), rand.Uint64()),
	}
}

// admit authenticates an audit-log request, numbers it and takes the fault
// scheduled for it, filling rec. It reports answered when it has answered
// the request itself (a missing or non-admin key, or a fault that replaces
// the response); otherwise fault is the fault still to apply to the list
// response, nil for none.
func (s *Simulator) admit(w http.ResponseWriter, r *http.Request, rec *RequestLog) (fault *Fault, answered bool) {
	key, apiErr := s.authenticate(r)
	rec.Key = redactKey(key)
	if apiErr != nil {
		writeError(w, apiErr)
		return nil, true
	}
	rec.Number = s.nextNumber()
	query, _ := url.ParseQuery(r.URL.RawQuery)
	f, faulted := s.faults.take(rec.Number, query)
	if !faulted {
		return nil, false
	}
	rec.Fault = f.Kind
	if s.answerFault(w, r, f) {
		return nil, true
	}
	return &f, false
}

// distortList applies the part of fault f that acts on the list body: it
// delays it (FaultSlow), truncates it (FaultTruncated) or repeats it
// (FaultConcatenated). It returns the body to send, or answered when the
// request has been answered (truncated) or abandoned (the client left or the
// simulator closed during a delay). With FaultTruncated and f.Abort it
// panics with http.ErrAbortHandler after sending the cut body.
func (s *Simulator) distortList(w *statusRecorder, r *http.Request, f Fault, body []byte) (_ []byte, answered bool) {
	switch f.Kind {
	case FaultSlow:
		if !s.wait(r, f.Delay) {
			return nil, true
		}
	case FaultTruncated:
		writeTruncated(w, body, f.Abort)
		return nil, true
	case FaultConcatenated:
		body = bytes.Join(slices.Repeat([][]byte{body}, f.Documents), []byte("\n"))
	}
	return body, false
}

// writeTruncated sends the first half of body with status 200. With abort
// it announces the full length, flushes and panics with
// http.ErrAbortHandler so the connection drops mid-body; otherwise the
// Content-Length matches the half sent.
func writeTruncated(w *statusRecorder, body []byte, abort bool) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	cut := body[:len(body)/2]
	if abort {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(cut)
		w.Flush()
		panic(http.ErrAbortHandler)
	}
	h.Set("Content-Length", strconv.Itoa(len(cut)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(cut)
}

// writeList sends body as the 200 answer of a request received at start.
func writeList(w http.ResponseWriter, body []byte, start time.Time) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("openai-processing-ms", strconv.FormatInt(max(time.Since(start).Milliseconds(), 1), 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// answerFault answers the request if the fault replaces the response, and
// reports whether it did.
func (s *Simulator) answerFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f.Kind {
	case FaultRateLimit:
		if f.RetryAfter > 0 {
			secs := max(int64((f.RetryAfter+time.Second-1)/time.Second), 1)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		writeError(w, &apiError{
			status:  http.StatusTooManyRequests,
			message: "Rate limit reached for requests to the Admin API. Please try again later.",
			typ:     "requests",
			code:    "rate_limit_exceeded",
		})
		return true
	case FaultServerError:
		switch f.Status {
		case http.StatusBadGateway:
			// Bad gateways come from the edge proxy as HTML, not JSON.
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"))
		case http.StatusServiceUnavailable:
			writeError(w, &apiError{status: f.Status, message: "The server is overloaded or not ready yet.", typ: "server_error"})
		default:
			writeError(w, &apiError{status: f.Status, message: "The server had an error while processing your request. Sorry about that!", typ: "server_error"})
		}
		return true
	case FaultTimeout:
		s.wait(r, f.Delay)
		// Drop the connection without a response.
		panic(http.ErrAbortHandler)
	case FaultInvalidCursor:
		param, v := "after", r.URL.Query().Get("after")
		if b := r.URL.Query().Get("before"); v == "" && b != "" {
			param, v = "before", b
		}
		writeError(w, invalidCursor(param, v))
		return true
	}
	return false
}

// wait blocks for d (forever if d is 0) and reports whether it ran out;
// it returns false early when the client leaves or the simulator closes.
func (s *Simulator) wait(r *http.Request, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

const noKeyMessage = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."

const missingScopeMessage = "You have insufficient permissions for this operation. Missing scopes: api.audit_logs.read."

// authenticate returns the bearer key, and an error unless it is an admin
// key.
func (s *Simulator) authenticate(r *http.Request) (string, *apiError) {
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	key = strings.TrimSpace(key)
	if !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", &apiError{status: http.StatusUnauthorized, message: noKeyMessage, typ: "invalid_request_error"}
	}
	if strings.HasPrefix(key, "sk-admin-") || slices.Contains(s.cfg.AdminKeys, key) {
		return key, nil
	}
	return key, &apiError{status: http.StatusUnauthorized, message: missingScopeMessage, typ: "invalid_request_error"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.MarshalIndent(e.body(), "", "  ")
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// list builds the 200 body for p and returns it with the ids it carries.
func (s *Simulator) list(p listParams) ([]byte, []string) {
	s.mu.RLock()
	evs, more := s.store.page(&p.filter, p.limit, p.after, p.before)
	var b bytes.Buffer
	b.WriteString(`{"object":"list","data":[`)
	ids := make([]string, len(evs))
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e.Raw)
		ids[i] = e.ID
	}
	b.WriteString(`],"first_id":`)
	if len(evs) == 0 {
		b.WriteString(`null,"last_id":null`)
	} else {
		writeJSON(&b, encodeCursor(positionOf(evs[0])))
		b.WriteString(`,"last_id":`)
		writeJSON(&b, encodeCursor(positionOf(evs[len(evs)-1])))
	}
	s.mu.RUnlock()
	b.WriteString(`,"has_more":`)
	b.WriteString(strconv.FormatBool(more))
	b.WriteString("}")
	return b.Bytes(), ids
}

func (s *Simulator) countServed(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.served[id]++
	}
}

func (s *Simulator) nextNumber() int {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.reqCount++
	return s.reqCount
}

func (s *Simulator) record(rec *RequestLog) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	s.reqSeq++
	rec.Seq = s.reqSeq
	if len(s.requests) >= s.cfg.RequestLogLimit {
		// Drop the oldest tenth at once so appends stay amortised O(1).
		s.requests = slices.Delete(s.requests, 0, max(len(s.requests)/10, len(s.requests)-s.cfg.RequestLogLimit+1))
	}
	s.requests = append(s.requests, *rec)
}

// Requests returns the recorded API requests, oldest first.
func (s *Simulator) Requests() []RequestLog {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return slices.Clone(s.requests)
}
