package kafkatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Confluent Schema Registry error codes the compatibility check answers
// with (besides srfake's own).
const (
	// CodeIncompatibleSchema is the error_code (and HTTP status) of a
	// registration the subject's compatibility level refuses.
	CodeIncompatibleSchema = 409
	// CodeInvalidSchema is the error_code of a schema that does not parse
	// (HTTP 422).
	CodeInvalidSchema = 42201
)

// maxSchemaBody bounds a request body the check reads.
const maxSchemaBody = 1 << 20

// EnforceCompatibility returns an HTTP handler that serves reg's Schema
// Registry API and, unlike srfake alone (whose compatibility checks always
// pass), enforces compatibility the way Confluent's Schema Registry does
// for Avro schemas:
//
//   - POST /subjects/{subject}/versions registers a schema only when it is
//     compatible, under the subject's level (else the global one), with
//     the latest version (BACKWARD, FORWARD, FULL) or with every version
//     (the _TRANSITIVE levels); NONE accepts anything. BACKWARD means the
//     new schema reads data written with the old one, FORWARD the old one
//     reads data written with the new one, FULL both. A refusal is HTTP
//     409 with error_code 409 and a message starting as Confluent's
//     ("Schema being registered is incompatible with an earlier schema for
//     subject …") followed by the reasons. A schema the subject already
//     holds is returned with its id without any check, as Confluent does.
//   - POST /compatibility/subjects/{subject}/versions[/{version}] answers
//     {"is_compatible": …} (with "messages" when verbose=true) against the
//     given version, or against the versions the level covers.
//   - A schema that is not valid Avro is refused with HTTP 422 and
//     error_code 42201.
//
// Compatibility is decided by hamba/avro's SchemaCompatibility, which, like
// Avro's Java checker that Confluent uses, ignores logical types. Schemas
// with references, non-Avro schemas and context-prefixed paths
// (/contexts/…) are passed to srfake unchecked. Everything else (lookups,
// config, deletes, SeedSchema and RegisterSchema called in Go) is srfake's
// own behaviour. Registrations are serialised, so two concurrent ones are
// each checked against the other. The handler is safe for concurrent use.
func EnforceCompatibility(reg *srfake.Registry) http.Handler {
	c := &compatChecker{inner: reg.Handler()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /subjects/{subject}/versions", c.register)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", c.compatibility)
	mux.HandleFunc("POST /compatibility/subjects/{subject}/versions", c.compatibility)
	mux.Handle("/", c.inner)
	return mux
}

type compatChecker struct {
	inner http.Handler
	// mu makes check-then-register atomic.
	mu sync.Mutex
}

// register checks a registration, then hands it to srfake.
func (c *compatChecker) register(w http.ResponseWriter, req *http.Request) {
	body, sch, ok := c.readSchema(w, req)
	if !ok {
		return
	}
	if sch == nil { // not ours to check
		c.forward(w, req, body)
		return
	}
	subject := req.PathValue("subject")
	c.mu.Lock()
	defer c.mu.Unlock()
	// A schema the subject already holds gets its id back unchecked.
	if status, _ := c.call(req, http.MethodPost, "/subjects/"+url.PathEscape(subject), body); status == http.StatusOK {
		c.forward(w, req, body)
		return
	}
	level, versions, ok := c.subjectState(w, req, subject)
	if !ok {
		return
	}
	problems, ok := c.check(w, req, subject, sch, level, targets(level, versions))
	if !ok {
		return
	}
	if len(problems) > 0 {
		writeError(w, http.StatusConflict, CodeIncompatibleSchema, fmt.Sprintf(
			"Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]; compatibility: %s",
			subject, strings.Join(problems, "; "), level))
		return
	}
	c.forward(w, req, body)
}

// compatibility answers a compatibility check.
func (c *compatChecker) compatibility(w http.ResponseWriter, req *http.Request) {
	_, sch, ok := c.readSchema(w, req)
	if !ok {
		return
	}
	subject, version := req.PathValue("subject"), req.PathValue("version")
	level, versions, ok := c.subjectState(w, req, subject)
	if !ok {
		return
	}
	var problems []string
	if sch != nil {
		against := targets(level, versions)
		if version != "" {
			against = []string{version}
		}
		if problems, ok = c.check(w, req, subject, sch, level, against); !ok {
			return
		}
	}
	resp := map[string]any{"is_compatible": len(problems) == 0}
	if req.URL.Query().Get("verbose") == "true" {
		resp["messages"] = append([]string{}, problems...)
	}
	respond(w, http.StatusOK, resp)
}

// readSchema reads the request's schema. sch is nil for schemas the check
// does not cover (not Avro, or with references); ok is false when it has
// answered the request itself (unreadable body, invalid Avro).
func (c *compatChecker) readSchema(w http.ResponseWriter, req *http.Request) (body []byte, sch avro.Schema, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxSchemaBody))
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: reading the request: "+err.Error())
		return nil, nil, false
	}
	var s sr.Schema
	if err := json.Unmarshal(body, &s); err != nil {
		writeError(w, http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: "+err.Error())
		return nil, nil, false
	}
	if s.Type != sr.TypeAvro || len(s.References) > 0 {
		return body, nil, true
	}
	sch, err = avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: "+err.Error())
		return nil, nil, false
	}
	return body, sch, true
}

// subjectState returns the subject's effective compatibility level and its
// versions (none for a subject that does not exist).
func (c *compatChecker) subjectState(w http.ResponseWriter, req *http.Request, subject string) (sr.CompatibilityLevel, []int, bool) {
	status, b := c.call(req, http.MethodGet, "/config/"+url.PathEscape(subject)+"?defaultToGlobal=true", nil)
	var cfg struct {
		Level sr.CompatibilityLevel `json:"compatibilityLevel"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &cfg) != nil {
		relay(w, status, b)
		return 0, nil, false
	}
	status, b = c.call(req, http.MethodGet, "/subjects/"+url.PathEscape(subject)+"/versions", nil)
	var versions []int
	switch {
	case status == http.StatusNotFound:
	case status != http.StatusOK || json.Unmarshal(b, &versions) != nil:
		relay(w, status, b)
		return 0, nil, false
	}
	return cfg.Level, versions, true
}

// targets are the versions a level checks a new schema against: none for
// NONE, every one for the transitive levels, else the latest.
func targets(level sr.CompatibilityLevel, versions []int) []string {
	if level == sr.CompatNone || len(versions) == 0 {
		return nil
	}
	switch level {
	case sr.CompatBackwardTransitive, sr.CompatForwardTransitive, sr.CompatFullTransitive:
	default:
		versions = versions[len(versions)-1:]
	}
	out := make([]string, len(versions))
	for i, v := range versions {
		out[i] = strconv.Itoa(v)
	}
	return out
}

// check returns why sch is incompatible with each of the subject's
// versions under level (nil: compatible). A version that cannot be read
// answers the request (ok false).
func (c *compatChecker) check(w http.ResponseWriter, req *http.Request, subject string, sch avro.Schema, level sr.CompatibilityLevel, versions []string) (problems []string, ok bool) {
	backward, forward := true, true
	switch level {
	case sr.CompatNone:
		return nil, true
	case sr.CompatBackward, sr.CompatBackwardTransitive:
		forward = false
	case sr.CompatForward, sr.CompatForwardTransitive:
		backward = false
	}
	compat := avro.NewSchemaCompatibility()
	for _, v := range versions {
		status, b := c.call(req, http.MethodGet, "/subjects/"+url.PathEscape(subject)+"/versions/"+url.PathEscape(v), nil)
		var old sr.SubjectSchema
		if status != http.StatusOK || json.Unmarshal(b, &old) != nil {
			relay(w, status, b)
			return nil, false
		}
		if old.Type != sr.TypeAvro || len(old.References) > 0 {
			continue
		}
		oldSch, err := avro.ParseWithCache(old.Schema.Schema, "", &avro.SchemaCache{})
		if err != nil {
			problems = append(problems, fmt.Sprintf("version %d does not parse: %v", old.Version, err))
			continue
		}
		if backward {
			if err := compat.Compatible(sch, oldSch); err != nil {
				problems = append(problems, fmt.Sprintf("the new schema cannot read data written with version %d (BACKWARD): %v", old.Version, err))
			}
		}
		if forward {
			if err := compat.Compatible(oldSch, sch); err != nil {
				problems = append(problems, fmt.Sprintf("version %d cannot read data written with the new schema (FORWARD): %v", old.Version, err))
			}
		}
	}
	return problems, true
}

// call runs one request against srfake in process, with the caller's
// credentials.
func (c *compatChecker) call(orig *http.Request, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequestWithContext(orig.Context(), method, path, bytes.NewReader(body))
	if a := orig.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	rec := httptest.NewRecorder()
	c.inner.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// forward hands the request, with its body read earlier, to srfake.
func (c *compatChecker) forward(w http.ResponseWriter, req *http.Request, body []byte) {
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	c.inner.ServeHTTP(w, req)
}

func respond(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	respond(w, status, map[string]any{"error_code": code, "message": msg})
}

// relay passes one of srfake's answers on.
func relay(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
