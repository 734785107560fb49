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
// parameters are ignored, as the API ignores e.g. order=asc.
func parseListParams(rawQuery string) (listParams, *apiError) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return listParams{}, invalidParam("", "", "Invalid query string: %v", err)
	}
	p := listParams{limit: defaultLimit}

	if vs, ok := q["limit"]; ok {
		v := vs[len(vs)-1]
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			return p, invalidParam("limit", "invalid_type", "Invalid 'limit': expected an integer, but got %q instead.", v)
		case n < 1:
			return p, invalidParam("limit", "integer_below_min_value", "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got %d instead.", n)
		case n > maxLimit:
			return p, invalidParam("limit", "integer_above_max_value", "Invalid 'limit': integer above maximum value. Expected a value <= %d, but got %d instead.", maxLimit, n)
		}
		p.limit = n
	}

	for _, op := range []string{"gt", "gte", "lt", "lte"} {
		name := "effective_at[" + op + "]"
		vs, ok := q[name]
		if !ok {
			continue
		}
		v := vs[len(vs)-1]
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return p, invalidParam(name, "invalid_type", "Invalid '%s': expected an integer (Unix seconds), but got %q instead.", name, v)
		}
		switch op {
		case "gt":
			p.filter.gt = &n
			if n == math.MaxInt64 {
				p.filter.empty = true
			}
		case "gte":
			p.filter.gte = &n
		case "lt":
			p.filter.lt = &n
			if n == math.MinInt64 {
				p.filter.empty = true
			}
		case "lte":
			p.filter.lte = &n
		}
	}

	if vs, ok := q["tenant_only"]; ok {
		switch v := strings.ToLower(strings.TrimSpace(vs[len(vs)-1])); v {
		case "true", "1":
			p.filter.tenantOnly = true
		case "false", "0", "":
		default:
			return p, invalidParam("tenant_only", "invalid_type", "Invalid 'tenant_only': expected a boolean, but got %q instead.", vs[len(vs)-1])
		}
	}

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
	p.filter.projectIDs = sets["project_ids"]
	p.filter.eventTypes = sets["event_types"]
	p.filter.actorIDs = sets["actor_ids"]
	p.filter.actorEmails = sets["actor_emails"]
	p.filter.resourceIDs = sets["resource_ids"]

	if p.filter.tenantOnly {
		for _, t := range slices.Sorted(maps.Keys(p.filter.eventTypes)) {
			if !TenantScoped(t) {
				return p, invalidParam("event_types", "invalid_value",
					"Invalid 'event_types': %q is not a tenant-scoped event type; with tenant_only=true every event type must be tenant-scoped.", t)
			}
		}
	}

	for _, name := range []string{"after", "before"} {
		vs, ok := q[name]
		if !ok {
			continue
		}
		v := vs[len(vs)-1]
		if v == "" {
			continue
		}
		pos, err := decodeCursor(v)
		if err != nil {
			return p, invalidCursor(name, v)
		}
		if name == "after" {
			p.after = &pos
		} else {
			p.before = &pos
		}
	}
	return p, nil
}

func invalidCursor(param, v string) *apiError {
	return invalidParam(param, "invalid_cursor", "Invalid '%s': %q is not a valid cursor. Pass the first_id or last_id of a previous response.", param, v)
}

func isArrayParam(name string) bool {
	return slices.Contains(arrayParams, name)
}
