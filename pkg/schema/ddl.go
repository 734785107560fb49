package schema

import (
	"errors"
	"fmt"
	"strings"
)

// SplitStatements splits a SQL script at the semicolons that end its
// statements, skipping those inside quotes ('…', "…", `…`) and comments
// (-- to end of line, /* … */). Statements are returned without comments
// (each replaced by a space or line break), surrounding white space and the
// semicolon; statements with nothing but comments are dropped. An unterminated quote or
// block comment is an error.
func SplitStatements(script string) ([]string, error) {
	var out []string
	start := 0
	flush := func(end int) {
		code, err := stripComments(script[start:end])
		if err != nil {
			return // reported by scanSQL below
		}
		if code = strings.TrimSpace(code); code != "" {
			out = append(out, code)
		}
	}
	err := scanSQL(script, func(i int, c byte) {
		if c == ';' {
			flush(i)
			start = i + 1
		}
	})
	if err != nil {
		return nil, err
	}
	flush(len(script))
	return out, nil
}

var (
	errUnterminatedQuote   = errors.New("unterminated quoted string or identifier")
	errUnterminatedComment = errors.New("unterminated block comment")
)

// scanSQL calls code for every byte of s that is outside quotes and
// comments, with its index. Quoted bytes and comments are skipped; a
// backslash escapes the next byte inside quotes, as in ClickHouse.
func scanSQL(s string, code func(i int, c byte)) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c { // doubled quote
						j++
						continue
					}
					break
				}
			}
			if j >= len(s) {
				return errUnterminatedQuote
			}
			code(i, c)
			code(j, c)
			i = j
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return nil
			}
			i += j
			code(i, '\n')
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				return errUnterminatedComment
			}
			i += 2 + j + 1
			code(i, ' ')
		default:
			code(i, c)
		}
	}
	return nil
}

// stripComments returns s with comments replaced by a space or newline;
// quoted text is kept verbatim.
func stripComments(s string) (string, error) {
	var b strings.Builder
	inQuote := -1
	err := scanSQL(s, func(i int, c byte) {
		switch {
		case inQuote >= 0: // the closing quote of a quoted run
			b.WriteString(s[inQuote : i+1])
			inQuote = -1
		case (c == '\'' || c == '"' || c == '`') && s[i] == c:
			inQuote = i
		default:
			b.WriteByte(c)
		}
	})
	return b.String(), err
}

// createTableName returns the table name of a CREATE TABLE statement and
// the comment-free statement text.
func createTableName(stmt string) (string, string, error) {
	code, err := stripComments(stmt)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(code)
	i := 0
	if i < len(f) && strings.EqualFold(f[i], "CREATE") {
		i++
	} else {
		return "", "", errors.New("not a CREATE statement")
	}
	if i+1 < len(f) && strings.EqualFold(f[i], "OR") && strings.EqualFold(f[i+1], "REPLACE") {
		i += 2
	}
	if i >= len(f) || !strings.EqualFold(f[i], "TABLE") {
		return "", "", errors.New("not a CREATE TABLE statement")
	}
	i++
	if i+2 < len(f) && strings.EqualFold(f[i], "IF") && strings.EqualFold(f[i+1], "NOT") && strings.EqualFold(f[i+2], "EXISTS") {
		i += 3
	}
	if i >= len(f) {
		return "", "", errors.New("CREATE TABLE without a name")
	}
	name, _, _ := strings.Cut(f[i], "(")
	return strings.ReplaceAll(name, "`", ""), code, nil
}

// columnClauseKeywords end a column's type in a column definition.
var columnClauseKeywords = map[string]bool{
	"DEFAULT": true, "MATERIALIZED": true, "ALIAS": true, "EPHEMERAL": true,
	"CODEC": true, "COMMENT": true, "TTL": true, "NULL": true, "NOT": true,
	"PRIMARY": true, "SETTINGS": true, "STATISTICS": true,
}

// elementKeywords start an element of the column list that is not a column.
var elementKeywords = map[string]bool{
	"INDEX": true, "PROJECTION": true, "CONSTRAINT": true, "PRIMARY": true,
}

// CreateTableColumns parses the column list of a ClickHouse CREATE TABLE
// statement: names (backquotes removed) and types (normalized), in order.
// Indexes, projections and constraints are skipped; codecs, defaults and
// comments after the type are ignored. A statement without a column list
// (CREATE TABLE … AS other) is an error.
func CreateTableColumns(stmt string) ([]Column, error) {
	_, code, err := createTableName(stmt)
	if err != nil {
		return nil, err
	}
	// The column list is the first parenthesized group.
	open, end := -1, -1
	depth := 0
	err = scanSQL(code, func(i int, c byte) {
		if end >= 0 {
			return
		}
		switch c {
		case '(':
			if open < 0 {
				open = i
			}
			depth++
		case ')':
			depth--
			if depth == 0 && open >= 0 {
				end = i
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if open < 0 || end < 0 {
		return nil, errors.New("CREATE TABLE has no column list")
	}
	// The name must come before the list: "CREATE TABLE t AS x ENGINE = D(...)"
	// has no column list.
	if head := strings.ToUpper(code[:open]); strings.Contains(head, " AS ") || strings.Contains(head, "\nAS ") {
		return nil, errors.New("CREATE TABLE … AS has no column list")
	}
	var cols []Column
	for _, el := range splitTopLevel(code[open+1 : end]) {
		el = strings.TrimSpace(el)
		if el == "" {
			return nil, errors.New("empty element in the column list")
		}
		first := strings.ToUpper(strings.Fields(el)[0])
		if elementKeywords[first] {
			continue
		}
		col, _, err := parseColumnDef(el)
		if err != nil {
			return nil, err
		}
		cols = append(cols, col)
	}
	if len(cols) == 0 {
		return nil, errors.New("CREATE TABLE has no columns")
	}
	return cols, nil
}

// splitTopLevel splits s at commas outside parentheses and quotes.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	_ = scanSQL(s, func(i int, c byte) {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	})
	return append(parts, s[start:])
}

// parseColumnDef parses "name Type [CODEC(...)] [DEFAULT ...] ..." and
// returns the column and the text after its type.
func parseColumnDef(el string) (Column, string, error) {
	var name, rest string
	if strings.HasPrefix(el, "`") {
		j := strings.IndexByte(el[1:], '`')
		if j < 0 {
			return Column{}, "", fmt.Errorf("column %q: unterminated name", el)
		}
		name, rest = el[1:1+j], el[2+j:]
	} else {
		k := strings.IndexAny(el, " \t\n\r")
		if k < 0 {
			return Column{}, "", fmt.Errorf("column %q has no type", el)
		}
		name, rest = el[:k], el[k:]
	}
	rest = strings.TrimSpace(rest)
	// The type is an identifier, optionally followed by one balanced
	// parenthesized group.
	k := 0
	for k < len(rest) && (isIdentByte(rest[k])) {
		k++
	}
	if k == 0 || columnClauseKeywords[strings.ToUpper(rest[:k])] {
		return Column{}, "", fmt.Errorf("column %q has no type", name)
	}
	typeEnd := k
	if p := strings.TrimLeft(rest[k:], " \t\n\r"); strings.HasPrefix(p, "(") {
		off := len(rest) - len(p)
		depth := 0
		end := -1
		_ = scanSQL(p, func(i int, c byte) {
			if end >= 0 {
				return
			}
			switch c {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					end = i
				}
			}
		})
		if end < 0 {
			return Column{}, "", fmt.Errorf("column %q: unbalanced type", name)
		}
		typeEnd = off + end + 1
	}
	return Column{Name: name, CHType: NormalizeType(rest[:typeEnd])}, rest[typeEnd:], nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// TableColumns returns the columns of table after running stmts in order:
// its CREATE TABLE (the name may be database-qualified) and then every
// ALTER TABLE … ADD COLUMN [IF NOT EXISTS] name Type [AFTER col | FIRST] on
// it. Other statements are ignored. Any other ALTER of the table is an
// error: the contract evolves by adding columns only (docs/schema.md), and
// this static model must not silently diverge from the engine.
func TableColumns(stmts []string, table string) ([]Column, error) {
	var cols []Column
	created := false
	for _, s := range stmts {
		if name, _, err := createTableName(s); err == nil {
			if unqualified(name) != table {
				continue
			}
			if created {
				return nil, fmt.Errorf("table %s created twice", table)
			}
			c, err := CreateTableColumns(s)
			if err != nil {
				return nil, fmt.Errorf("creating %s: %w", table, err)
			}
			cols, created = c, true
			continue
		}
		name, actions, err := alterTable(s)
		if err != nil || unqualified(name) != table {
			continue
		}
		if !created {
			return nil, fmt.Errorf("ALTER TABLE %s before its CREATE TABLE", table)
		}
		for _, a := range actions {
			if cols, err = addColumn(cols, a); err != nil {
				return nil, fmt.Errorf("altering %s: %w", table, err)
			}
		}
	}
	if !created {
		return nil, fmt.Errorf("no CREATE TABLE %s", table)
	}
	return cols, nil
}

func unqualified(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// alterTable splits "ALTER TABLE name [ON CLUSTER c] action, action" into
// the table name and its actions.
func alterTable(stmt string) (string, []string, error) {
	code, err := stripComments(stmt)
	if err != nil {
		return "", nil, err
	}
	f := strings.Fields(code)
	if len(f) < 4 || !strings.EqualFold(f[0], "ALTER") || !strings.EqualFold(f[1], "TABLE") {
		return "", nil, errors.New("not an ALTER TABLE statement")
	}
	name := strings.ReplaceAll(f[2], "`", "")
	// Skip "ALTER TABLE name [ON CLUSTER c]" in the original text.
	rest := code
	skip := 3
	if len(f) > 5 && strings.EqualFold(f[3], "ON") && strings.EqualFold(f[4], "CLUSTER") {
		skip = 6
	}
	for range skip {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if i := strings.IndexAny(rest, " \t\r\n"); i >= 0 {
			rest = rest[i:]
		} else {
			rest = ""
		}
	}
	return name, splitTopLevel(rest), nil
}

// addColumn applies one ALTER action, which must be ADD COLUMN.
func addColumn(cols []Column, action string) ([]Column, error) {
	f := strings.Fields(action)
	if len(f) < 2 || !strings.EqualFold(f[0], "ADD") || !strings.EqualFold(f[1], "COLUMN") {
		return nil, fmt.Errorf("unsupported ALTER action %q: only ADD COLUMN keeps the contract additive", strings.TrimSpace(action))
	}
	def := strings.TrimSpace(action)
	def = strings.TrimSpace(def[len(f[0]):])
	def = strings.TrimSpace(def[len(f[1]):])
	if len(f) > 5 && strings.EqualFold(f[2], "IF") && strings.EqualFold(f[3], "NOT") && strings.EqualFold(f[4], "EXISTS") {
		for _, w := range f[2:5] {
			def = strings.TrimSpace(def[len(w):])
		}
	}
	col, rest, err := parseColumnDef(def)
	if err != nil {
		return nil, err
	}
	for _, c := range cols {
		if c.Name == col.Name {
			return cols, nil // IF NOT EXISTS semantics: the column stays as it is
		}
	}
	at := len(cols)
	words := strings.Fields(rest)
	for i, w := range words {
		switch {
		case strings.EqualFold(w, "FIRST"):
			at = 0
		case strings.EqualFold(w, "AFTER") && i+1 < len(words):
			after := strings.Trim(words[i+1], "`")
			at = -1
			for j, c := range cols {
				if c.Name == after {
					at = j + 1
				}
			}
			if at < 0 {
				return nil, fmt.Errorf("ADD COLUMN %s AFTER unknown column %q", col.Name, after)
			}
		}
	}
	return append(cols[:at:at], append([]Column{col}, cols[at:]...)...), nil
}
