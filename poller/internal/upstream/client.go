package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/retry"
)

// AuthMessage is the actionable text of every authentication failure.
const AuthMessage = "an Admin API key is required: create one under Organization Settings → Admin Keys; audit logging must be enabled"

// maxBody bounds a response body; a page of 100 events is about 100 KiB.
const maxBody = 32 << 20

// Class says what kind of failure an Error is. The set is closed, so it is
// safe as a metric label.
type Class string

// Error classes.
const (
	// ClassAuth: 401 or 403. Permanent until the key or the organization
	// changes.
	ClassAuth Class = "auth"
	// ClassRateLimit: 429.
	ClassRateLimit Class = "rate_limit"
	// ClassServer: 5xx, 408 and 409.
	ClassServer Class = "server"
	// ClassNetwork: the request could not be sent or its answer not read.
	ClassNetwork Class = "network"
	// ClassDecode: a 200 whose body is not a usable page.
	ClassDecode Class = "decode"
	// ClassClient: other 4xx (400, 404, 422): the request is wrong.
	ClassClient Class = "client"
	// ClassRedirect: a 3xx. Redirects are never followed (the admin key
	// would go with them); the base URL is wrong or the upstream hostile.
	ClassRedirect Class = "redirect"
)

// Bounds of the upstream text kept in an Error (after scrubbing).
const (
	maxRequestID = 200
	maxMessage   = 300
)

// Error is a failed request. It never holds the admin key nor any other
// secret the client was told to scrub: every text that came from the
// upstream is scrubbed and cut before it is stored.
type Error struct {
	Class Class
	// Status is the HTTP status, 0 when there was no response.
	Status int
	// RequestID is the response's x-request-id, if any (at most 200
	// bytes).
	RequestID string
	// Message is the API's error.message or a description of the failure
	// (at most 300 bytes of upstream text).
	Message string
	// Attempts is how many requests were made.
	Attempts int
	err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listing audit logs: %s", e.Class)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Class == ClassAuth {
		fmt.Fprintf(&b, ": %s", AuthMessage)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (x-request-id %s)", e.RequestID)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.err }

// Summary describes the failure with its class, status and what to do,
// and nothing the upstream sent: the form that may be served (/readyz).
func (e *Error) Summary() string {
	var b strings.Builder
	b.WriteString(string(e.Class))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	fmt.Fprintf(&b, ": %s", hints[e.Class])
	return b.String()
}

// hints are the actionable texts of each class.
var hints = map[Class]string{
	ClassAuth:      AuthMessage,
	ClassRateLimit: "the API keeps rate-limiting this key: raise poll_interval",
	ClassServer:    "the API keeps failing with server errors",
	ClassNetwork:   "the API cannot be reached: check base_url, DNS, proxies and the network",
	ClassDecode:    "the API's answers are not audit log pages: check base_url",
	ClassClient:    "the API refuses the request: check base_url, event_types and project_ids",
	ClassRedirect:  "the API answered with a redirect, which is never followed (the admin key would go with it): set base_url to the API root",
}

// Permanent reports whether retrying the same request cannot help:
// authentication and other client errors, and redirects.
func (e *Error) Permanent() bool {
	return e.Class == ClassAuth || e.Class == ClassClient || e.Class == ClassRedirect
}

// ClassOf returns the class of err, or "" when err is not an *Error.
func ClassOf(err error) Class {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Class
	}
	return ""
}

// Query is one list request.
type Query struct {
	// GTE is effective_at[gte] in Unix seconds.
	GTE int64
	// LT is effective_at[lt] in Unix seconds; 0 leaves it out.
	LT int64
	// EventTypes and ProjectIDs are server-side filters (empty: all).
	EventTypes []string
	ProjectIDs []string
	// TenantOnly selects the tenant-scoped stream.
	TenantOnly bool
	// Limit is the page size, 1-100.
	Limit int
	// After is the cursor of the previous page's last_id; empty for the
	// first page.
	After string
}

// Values encodes q the way the SDKs do (brackets for arrays and nested
// objects); url.Values.Encode escapes the brackets.
func (q Query) Values() url.Values {
	v := url.Values{}
	v.Set("effective_at[gte]", strconv.FormatInt(q.GTE, 10))
	if q.LT != 0 {
		v.Set("effective_at[lt]", strconv.FormatInt(q.LT, 10))
	}
	for _, t := range q.EventTypes {
		v.Add("event_types[]", t)
	}
	for _, p := range q.ProjectIDs {
		v.Add("project_ids[]", p)
	}
	if q.TenantOnly {
		v.Set("tenant_only", "true")
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	return v
}

// Attempt describes one HTTP request, for metrics.
type Attempt struct {
	Status   int // 0 without a response
	Class    Class
	Duration time.Duration
}

// Config configures a Client.
type Config struct {
	// BaseURL is the API root, e.g. https://api.openai.com/v1.
	BaseURL string
	// Key is the admin key, sent as a bearer token and nowhere else.
	Key config.Secret
	// Scrubber removes further secrets (the other sources' keys, every
	// secret of the process) from upstream text; the client always
	// removes its own Key. nil: only Key.
	Scrubber *config.Scrubber
	// HTTP is the client to use; nil means a new one. The client never
	// follows redirects, whatever HTTP's CheckRedirect says.
	HTTP *http.Client
	// RequestTimeout bounds one attempt (default 30s).
	RequestTimeout time.Duration
	// MaxAttempts bounds the attempts of one List call (default 5).
	MaxAttempts int
	// Backoff is the wait between attempts (Initial and Max default to
	// 500ms and 30s; its MaxAttempts is ignored: MaxAttempts rules). A
	// Retry-After longer than Backoff.Max is honoured up to MaxRetryAfter.
	Backoff retry.Policy
	// MaxRetryAfter caps a server-requested delay (default 5m).
	MaxRetryAfter time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// OnAttempt, if set, is called after every attempt (metrics).
	OnAttempt func(Attempt)
}

// Client lists audit-log pages with retries. It is safe for concurrent use.
type Client struct {
	cfg      Config
	endpoint string
	logger   *slog.Logger
}

// New validates cfg and returns a Client. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("creating audit log client: base url %q is not an http(s) URL", cfg.BaseURL)
	}
	if !cfg.Key.IsSet() {
		return nil, errors.New("creating audit log client: admin key is empty")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff.Initial <= 0 {
		cfg.Backoff.Initial = 500 * time.Millisecond
	}
	if cfg.Backoff.Max < cfg.Backoff.Initial {
		cfg.Backoff.Max = max(30*time.Second, cfg.Backoff.Initial)
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 5 * time.Minute
	}
	hc := &http.Client{}
	if cfg.HTTP != nil {
		hc = new(*cfg.HTTP) // a copy shares the transport and its connections
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTP = hc
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg:      cfg,
		endpoint: strings.TrimSuffix(cfg.BaseURL, "/") + "/organization/audit_logs",
		logger:   logger,
	}, nil
}

// List fetches one page, retrying 408, 409, 429, 5xx, network failures and
// malformed bodies with the Backoff policy, honouring Retry-After-Ms,
// Retry-After and x-should-retry. It blocks until a page is decoded, a
// permanent error occurs, the attempts are exhausted or ctx is done. Errors
// are *Error (or ctx's error, alone or joined with the last *Error).
func (c *Client) List(ctx context.Context, q Query) (Page, error) {
	var page Page
	attempts := 0
	policy := c.cfg.Backoff
	policy.MaxAttempts = c.cfg.MaxAttempts
	err := policy.Do(ctx, func(ctx context.Context) error {
		attempts++
		p, e, retryAfter, shouldRetry := c.once(ctx, q)
		if e == nil {
			page = p
			return nil
		}
		e.Attempts = attempts
		return c.retryable(ctx, e, retryAfter, shouldRetry)
	}, c.logRetry)
	if err != nil {
		return Page{}, err
	}
	return page, nil
}

// retryable marks a failed attempt for the retry policy: permanent (ctx
// done, an auth or client error, x-should-retry: false), retried after the
// server's delay, or retried with backoff.
func (c *Client) retryable(ctx context.Context, e *Error, retryAfter time.Duration, shouldRetry *bool) error {
	if ctx.Err() != nil {
		return retry.Permanent(ctx.Err())
	}
	again := !e.Permanent()
	if shouldRetry != nil && e.Class != ClassRedirect {
		again = *shouldRetry
	}
	switch {
	case !again:
		return retry.Permanent(e)
	case retryAfter > 0:
		return retry.After(e, min(retryAfter, c.cfg.MaxRetryAfter))
	}
	return e
}

// logRetry reports an attempt about to be retried.
func (c *Client) logRetry(attempt int, err error, delay time.Duration) {
	e, _ := errors.AsType[*Error](err)
	if e == nil {
		return
	}
	c.logger.Warn("audit log request failed, retrying",
		slog.String("class", string(e.Class)), slog.Int("status", e.Status),
		slog.String("x_request_id", e.RequestID), slog.String("error", e.Message),
		slog.Int("attempt", attempt), slog.Duration("delay", delay))
}

// clean returns upstream text fit to log, store in an error or serve:
// every secret scrubbed (the key first), then cut to at most limit bytes.
func (c *Client) clean(s string, limit int) string {
	if k := c.cfg.Key.Value(); k != "" {
		s = strings.ReplaceAll(s, k, config.Redacted)
	}
	return cut(c.cfg.Scrubber.Scrub(s), limit)
}

// cut returns s cut to at most limit bytes on a rune boundary, marked
// with "…" when cut.
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func (c *Client) once(ctx context.Context, q Query) (Page, *Error, time.Duration, *bool) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	report := func(status int, class Class) {
		if c.cfg.OnAttempt != nil {
			c.cfg.OnAttempt(Attempt{Status: status, Class: class, Duration: time.Since(start)})
		}
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, c.endpoint+"?"+q.Values().Encode(), nil)
	if err != nil {
		report(0, ClassClient)
		return Page{}, &Error{Class: ClassClient, Message: "building request", err: err}, 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Key.Value())
	req.Header.Set("Accept", "application/json")
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		report(0, ClassNetwork)
		return Page{}, &Error{Class: ClassNetwork, Message: c.clean(describeNetErr(err), maxMessage), err: err}, 0, nil
	}
	defer resp.Body.Close()
	reqID := c.clean(resp.Header.Get("x-request-id"), maxRequestID)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		report(resp.StatusCode, ClassRedirect)
		return Page{}, &Error{Class: ClassRedirect, Status: resp.StatusCode, RequestID: reqID, Message: c.redirectMessage(resp)}, 0, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("body exceeds %d bytes", maxBody)
	}
	if err != nil {
		report(resp.StatusCode, ClassNetwork)
		return Page{}, &Error{Class: ClassNetwork, Status: resp.StatusCode, RequestID: reqID, Message: "reading body: " + c.clean(describeNetErr(err), maxMessage), err: err}, 0, nil
	}
	if resp.StatusCode == http.StatusOK {
		page, err := DecodePage(body)
		if err != nil {
			report(resp.StatusCode, ClassDecode)
			return Page{}, &Error{Class: ClassDecode, Status: resp.StatusCode, RequestID: reqID, Message: c.clean(err.Error(), maxMessage), err: ErrMalformed}, 0, nil
		}
		page.RequestID = reqID
		report(resp.StatusCode, "")
		c.logger.Debug("audit log page", slog.String("x_request_id", reqID), slog.Int("items", len(page.Items)),
			slog.Bool("has_more", page.HasMore), slog.Duration("latency", time.Since(start)))
		if page.Documents > 1 {
			c.logger.Warn("audit log response held concatenated JSON documents; merged them",
				slog.String("x_request_id", reqID), slog.Int("documents", page.Documents))
		}
		return page, nil, 0, nil
	}
	class := classify(resp.StatusCode)
	report(resp.StatusCode, class)
	e := &Error{Class: class, Status: resp.StatusCode, RequestID: reqID, Message: c.clean(apiMessage(body), maxMessage)}
	return Page{}, e, retryAfter(resp.Header, time.Now()), shouldRetry(resp.Header)
}

// redirectMessage describes a redirect by where it pointed (scheme and
// host only, scrubbed): enough to fix base_url, nothing of its path or
// query, which may echo the request.
func (c *Client) redirectMessage(resp *http.Response) string {
	to := "nowhere (no Location)"
	if loc, err := resp.Location(); err == nil {
		to = c.clean(loc.Scheme+"://"+loc.Host, maxRequestID)
	}
	return fmt.Sprintf("the API redirected to %s; redirects are never followed (the admin key would go with them): set base_url to the API root", to)
}

func classify(status int) Class {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ClassAuth
	case status == http.StatusTooManyRequests:
		return ClassRateLimit
	case status == http.StatusRequestTimeout || status == http.StatusConflict || status >= 500:
		return ClassServer
	default:
		return ClassClient
	}
}

// apiMessage extracts error.message from an ErrorResponse body. An
// upstream may echo the request (and the key) in it: the caller scrubs
// and cuts it.
func apiMessage(body []byte) string {
	var er struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &er) != nil || er.Error.Message == "" {
		return ""
	}
	return er.Error.Message
}

// describeNetErr renders a transport error without the request URL (which
// carries no key, but keeps messages short).
func describeNetErr(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "request timed out"
	}
	return err.Error()
}

// retryAfter reads Retry-After-Ms, then Retry-After (seconds or HTTP
// date). It returns 0 when neither is usable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func shouldRetry(h http.Header) *bool {
	switch h.Get("x-should-retry") {
	case "true":
		t := true
		return &t
	case "false":
		f := false
		return &f
	}
	return nil
}
