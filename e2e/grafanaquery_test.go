package e2e_test

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// grafanaQuery turns a panel's SQL into what ClickHouse receives from
// Grafana with the grafana-clickhouse-datasource plugin (v4.20), in the
// plugin's order:
//
//  1. in the browser, $__conditionalAll(cond, $v) becomes cond, or 1=1 when
//     $v selects All (CHDatasource.applyConditionalAll);
//  2. in the browser, Grafana replaces template variables, formatting a
//     multi-value as 'a','b' (the plugin's format function);
//  3. in the plugin's backend, the time macros expand (pkg/macros, through
//     grafana/macropro): comments stripped, macros matched longest name
//     first, arguments split at top-level commas outside quotes.
//
// The expansions are the plugin's, function by function (its macros.go and
// macropro's defaults.go): a panel that passes here sends ClickHouse the
// same text as Grafana would.
type grafanaQuery struct {
	from, to time.Time
	interval time.Duration
	// vars holds each template variable's current value; a multi-value
	// variable set to All is allValue.
	vars map[string][]string
}

const allValue = "$__all"

// leftoverRE finds a variable or macro left in an expanded query.
var leftoverRE = regexp.MustCompile(`\$\{?\w`)

func (g grafanaQuery) expand(sql string) (string, error) {
	if strings.Contains(sql, "--") || strings.Contains(sql, "/*") {
		return "", errors.New("comments in panel SQL: the plugin strips them before expanding macros, which is not modelled here")
	}
	sql, err := g.conditionalAll(sql)
	if err != nil {
		return "", err
	}
	sql = g.replaceVariables(sql)
	sql, err = g.macros(sql)
	if err != nil {
		return "", err
	}
	if loc := leftoverRE.FindStringIndex(sql); loc != nil {
		return "", fmt.Errorf("unexpanded %q in %s", sql[loc[0]:min(len(sql), loc[0]+30)], sql)
	}
	return sql, nil
}

// conditionalAll is CHDatasource.applyConditionalAll: from the last macro
// to the first, its two arguments (split at commas at depth one), the
// variable named in the second; its value, joined with commas, being "" or
// "$__all" makes the phrase 1=1, else the first argument. The replaced text
// is the first occurrence of "$__conditionalAll(" + a0 + "," + a1 + ")".
func (g grafanaQuery) conditionalAll(sql string) (string, error) {
	const macro = "$__conditionalAll("
	varRE := regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	for i := strings.LastIndex(sql, macro); i >= 0; i = strings.LastIndex(sql, macro) {
		args := macroArgs(sql, i+len(macro)-1)
		if len(args) != 2 {
			return "", fmt.Errorf("$__conditionalAll at %d: want 2 arguments, got %d", i, len(args))
		}
		phrase := args[0]
		if m := varRE.FindStringSubmatch(strings.TrimSpace(args[1])); m != nil {
			name := m[1] + m[2]
			v, ok := g.vars[name]
			if !ok {
				return "", fmt.Errorf("$__conditionalAll names the unknown variable %s", name)
			}
			if joined := strings.Join(v, ","); joined == "" || joined == allValue {
				phrase = "1=1"
			}
		}
		sql = strings.Replace(sql, macro+args[0]+","+args[1]+")", phrase, 1)
	}
	return sql, nil
}

// macroArgs is the plugin's getMacroArgs: from the '(' at open, the
// arguments up to the matching ')', split at commas at depth one (quotes
// are not considered).
func macroArgs(s string, open int) []string {
	var args []string
	depth, last := 0, open+1
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return append(args, s[last:i])
			}
		case ',':
			if depth == 1 {
				args = append(args, s[last:i])
				last = i + 1
			}
		}
	}
	return nil
}

// replaceVariables is Grafana's templateSrv.replace with the plugin's
// format function: $name and ${name} become the value, a multi-value (or
// All, which selects every value of the variable) 'a','b'. Built-in
// variables ($__name) are left for the backend.
func (g grafanaQuery) replaceVariables(sql string) string {
	re := regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)
	return re.ReplaceAllStringFunc(sql, func(tok string) string {
		m := re.FindStringSubmatch(tok)
		name := m[1] + m[2]
		if strings.HasPrefix(name, "__") {
			return tok
		}
		v, ok := g.vars[name]
		if !ok {
			return tok
		}
		if len(v) == 1 && !g.multi(name) {
			return v[0]
		}
		return "'" + strings.Join(v, "','") + "'"
	})
}

// multi reports whether name is a multi-value variable (the dashboards'
// query variables are; the database textbox is not).
func (g grafanaQuery) multi(name string) bool { return name != "database" }

// macros is macropro.Interpolate with the plugin's ClickHouseMacros.
func (g grafanaQuery) macros(sql string) (string, error) {
	handlers := map[string]func(args []string) (string, error){
		"timeFilter": func(a []string) (string, error) {
			if len(a) != 1 {
				return "", badArgs("$__timeFilter", 1, len(a))
			}
			return fmt.Sprintf("%s >= %s AND %s <= %s", a[0], toDateTime(g.from), a[0], toDateTime(g.to)), nil
		},
		"timeFrom": func(a []string) (string, error) {
			if len(a) != 1 {
				return "", badArgs("$__timeFrom", 1, len(a))
			}
			return fmt.Sprintf("%s >= %s", a[0], toDateTime(g.from)), nil
		},
		"timeTo": func(a []string) (string, error) {
			if len(a) != 1 {
				return "", badArgs("$__timeTo", 1, len(a))
			}
			return fmt.Sprintf("%s <= %s", a[0], toDateTime(g.to)), nil
		},
		"fromTime": func([]string) (string, error) { return toDateTime(g.from), nil },
		"toTime":   func([]string) (string, error) { return toDateTime(g.to), nil },
		"fromTime_ms": func([]string) (string, error) {
			return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", g.from.UnixMilli()), nil
		},
		"toTime_ms": func([]string) (string, error) {
			return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", g.to.UnixMilli()), nil
		},
		"timeInterval": func(a []string) (string, error) {
			if len(a) != 1 {
				return "", badArgs("$__timeInterval", 1, len(a))
			}
			return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", a[0], int(math.Max(g.interval.Seconds(), 1))), nil
		},
		"interval_s":  func([]string) (string, error) { return strconv.Itoa(int(math.Max(g.interval.Seconds(), 1))), nil },
		"interval_ms": func([]string) (string, error) { return strconv.FormatInt(g.interval.Milliseconds(), 10), nil },
	}
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) > len(names[j])
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		var err error
		sql = replaceMacro(sql, "$__"+name, func(raw string) string {
			if err != nil {
				return raw
			}
			if strings.Contains(raw, "$__") {
				err = fmt.Errorf("%s: nested macros are not modelled here (the plugin expands them innermost first)", "$__"+name)
				return raw
			}
			args := splitMacroArgs(raw)
			out, herr := handlers[name](args)
			if herr != nil {
				err = herr
				return raw
			}
			return out
		})
		if err != nil {
			return "", err
		}
	}
	return sql, nil
}

func badArgs(macro string, want, got int) error {
	return fmt.Errorf("%s expected %d argument(s), received %d", macro, want, got)
}

func toDateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }

// replaceMacro is macropro's replaceAllMacro: every token not followed by
// a name character, with its optional parenthesized argument list.
func replaceMacro(s, token string, fn func(raw string) string) string {
	var b strings.Builder
	for {
		idx := strings.Index(s, token)
		if idx < 0 {
			b.WriteString(s)
			return b.String()
		}
		after := idx + len(token)
		if after < len(s) && isNameChar(s[after]) {
			b.WriteString(s[:after])
			s = s[after:]
			continue
		}
		b.WriteString(s[:idx])
		s = s[after:]
		raw := ""
		if len(s) > 0 && s[0] == '(' {
			if end, err := closingParen(s); err == nil {
				raw, s = s[1:end], s[end+1:]
			}
		}
		b.WriteString(fn(raw))
	}
}

func isNameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// closingParen finds the ')' closing the '(' at s[0], skipping quoted
// strings (” and "" doubled quotes escape).
func closingParen(s string) (int, error) {
	depth := 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '\'', '"':
			i = skipQuoted(s, i)
			continue
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
		i++
	}
	return -1, errors.New("unbalanced parentheses")
}

func skipQuoted(s string, pos int) int {
	q := s[pos]
	for j := pos + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// splitMacroArgs is macropro's parseArgs: trimmed arguments split at
// commas outside parentheses and quotes; none for a blank list.
func splitMacroArgs(raw string) []string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	var args []string
	depth, start := 0, 0
	for i := 0; i < len(raw); {
		switch raw[i] {
		case '\'', '"':
			i = skipQuoted(raw, i)
			continue
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(raw[start:i]))
				start = i + 1
			}
		}
		i++
	}
	return append(args, strings.TrimSpace(raw[start:]))
}
