package openaisim

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// apiError is an error answered in the API's ErrorResponse shape.
type apiError struct {
	status  int
	message string
	typ     string
	param   string // "" encodes as null
	code    string // "" encodes as null
}

func (e *apiError) Error() string { return e.message }

func (e *apiError) body() ErrorResponse {
	b := ErrorResponse{Error: ErrorBody{Message: e.message, Type: e.typ}}
	if e.param != "" {
		b.Error.Param = &e.param
	}
	if e.code != "" {
		b.Error.Code = &e.code
	}
	return b
}

func invalidParam(param, code, format string, args ...any) *apiError {
	return &apiError{
		status:  http.StatusBadRequest,
		message: fmt.Sprintf(format, args...),
		typ:     "invalid_request_error",
		param:   param,
		code:    code,
	}
}

// listParams is a parsed audit-log list request.
type listParams struct {
	filter filter
	limit  int
	after  *position
	before *position
}

const (
	defaultLimit = 20
	maxLimit     = 100
)

// arrayParams are the array parameters; each accepts name[], name and
// name[<index>] spellings.
var arrayParams = []string{"project_ids", "event_types", "actor_ids", "actor_emails", "resource_ids"}

var arrayKey = regexp.MustCompile(`^([a-z_]+)(\[\d*\])?$`)

// parseListParams parses the query string of a list request. Unknown
// parameters are ignored, as the API ignores e.g. order=asc. On an error the
// returned params hold what was parsed before the offending parameter.
func parseListParams(rawQuery string) (listParams, *apiError) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return listParams{}, invalidParam("", "", "Invalid query string: %v", err)
	}
	p := listParams{limit: defaultLimit}
	if err := p.parseLimit(q); err != nil {
		return p, err
	}
	if err := p.filter.parseEffectiveAt(q); err != nil {
		return p, err
	}
	if err := p.filter.parseTenantOnly(q); err != nil {
		return p, err
	}
	p.filter.parseArrays(q)
	if err := p.filter.checkTenantOnlyTypes(); err != nil {
		return p, err
	}
	if err := p.parseCursors(q); err != nil {
		return p, err
	}
	return p, nil
}

// lastValue returns the last value of parameter name, and whether it is
// present: a repeated scalar parameter takes its last value.
func lastValue(q url.Values, name string) (string, bool) {
	vs, ok := q[name]
	if !ok {
		return "", false
	}
	return vs[len(vs)-1], true
}

// parseLimit sets p.limit from limit, which must be an integer in
// [1, maxLimit]; p.limit keeps its default when limit is absent.
func (p *listParams) parseLimit(q url.Values) *apiError {
	v, ok := lastValue(q, "limit")
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil:
		return invalidParam("limit", "invalid_type", "Invalid 'limit': expected an integer, but got %q instead.", v)
	case n < 1:
		return invalidParam("limit", "integer_below_min_value", "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %d instead.", n)
	case n > maxLimit:
		return invalidParam("limit", "integer_above_max_value", "Invalid 'limit': integer above maximum value. Expected a value <= %d, but got %d instead.", maxLimit, n)
	}
	p.limit = n
	return nil
}

// parseEffectiveAt sets the bounds effective_at[gt|gte|lt|lte] (Unix
// seconds), in that order, stopping at the first that is not an integer.
// A bound no effective_at can pass (gt MaxInt64, lt MinInt64) sets f.empty.
func (f *filter) parseEffectiveAt(q url.Values) *apiError {
	for _, op := range []string{"gt", "gte", "lt", "lte"} {
		name := "effective_at[" + op + "]"
		v, ok := lastValue(q, name)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return invalidParam(name, "invalid_type", "Invalid '%s': expected an integer (Unix seconds), but got %q instead.", name, v)
		}
		f.setBound(op, n)
	}
	return nil
}

// setBound sets the effective_at bound op to n.
func (f *filter) setBound(op string, n int64) {
	switch op {
	case "gt":
		f.gt = &n
		if n == math.MaxInt64 {
			f.empty = true
		}
	case "gte":
		f.gte = &n
	case "lt":
		f.lt = &n
		if n == math.MinInt64 {
			f.empty = true
		}
	case "lte":
		f.lte = &n
	}
}

// parseTenantOnly sets f.tenantOnly from tenant_only: true/1, false/0 or
// empty, case-insensitive.
func (f *filter) parseTenantOnly(q url.Values) *apiError {
	raw, ok := lastValue(q, "tenant_only")
	if !ok {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "true", "1":
		f.tenantOnly = true
	case "false", "0", "":
	default:
		return invalidParam("tenant_only", "invalid_type", "Invalid 'tenant_only': expected a boolean, but got %q instead.", raw)
	}
	return nil
}

// parseArrays sets the id and type sets from the array parameters, merging
// every spelling (name[], name, name[<index>]) of each. A parameter absent
// from q leaves its set nil (no restriction).
func (f *filter) parseArrays(q url.Values) {
	sets := make(map[string]map[string]bool)
	for key, vs := range q {
		m := arrayKey.FindStringSubmatch(key)
		if m == nil || !isArrayParam(m[1]) {
			continue
		}
		set := sets[m[1]]
		if set == nil {
			set = make(map[string]bool)
			sets[m[1]] = set
		}
		for _, v := range vs {
			set[v] = true
		}
	}
	f.projectIDs = sets["project_ids"]
	f.eventTypes = sets["event_types"]
	f.actorIDs = sets["actor_ids"]
	f.actorEmails = sets["actor_emails"]
	f.resourceIDs = sets["resource_ids"]
}

// checkTenantOnlyTypes rejects, under tenant_only=true, the first (in sorted
// order) requested event type that is not tenant-scoped.
func (f *filter) checkTenantOnlyTypes() *apiError {
	if !f.tenantOnly {
		return nil
	}
	for _, t := range slices.Sorted(maps.Keys(f.eventTypes)) {
		if !TenantScoped(t) {
			return invalidParam("event_types", "invalid_value",
				"Invalid 'event_types': %q is not a tenant-scoped event type; with tenant_only=true every event type must be tenant-scoped.", t)
		}
	}
	return nil
}

// parseCursors sets p.after and p.before from the cursors after and before,
// in that order; an empty cursor counts as absent.
func (p *listParams) parseCursors(q url.Values) *apiError {
	for _, name := range []string{"after", "before"} {
		v, _ := lastValue(q, name)
		if v == "" {
			continue
		}
		pos, err := decodeCursor(v)
		if err != nil {
			return invalidCursor(name, v)
		}
		if name == "after" {
			p.after = &pos
		} else {
			p.before = &pos
		}
	}
	return nil
}

func invalidCursor(param, v string) *apiError {
	return invalidParam(param, "invalid_cursor", "Invalid '%s': %q is not a valid cursor. Pass the first_id or last_id of a previous response.", param, v)
}

func isArrayParam(name string) bool {
	return slices.Contains(arrayParams, name)
}
