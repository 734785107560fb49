package chserver

import (
	"strings"
)

// insertData describes an INSERT whose data follows the statement: Stmt is
// the statement without the FORMAT clause (or with VALUES removed), Format the
// input format and DataStart the offset of the first data byte in the text.
type insertData struct {
	Stmt      string
	Format    string
	DataStart int
}

// parseInsert recognizes "INSERT ... FORMAT <name> <data>" and
// "INSERT ... VALUES <data>" at the start of text (after whitespace and
// comments). Like ClickHouse's parser, data starts after the first newline
// following the format name if there is one before other text, otherwise after
// the whitespace. It only scans up to the FORMAT/VALUES keyword, so the data
// may be anything. ok is false for any other statement (including
// INSERT ... SELECT).
func parseInsert(text []byte) (ins insertData, ok bool) {
	s := lexer{src: text}
	first := s.next()
	if !strings.EqualFold(first.text(text), "INSERT") {
		return insertData{}, false
	}
	depth := 0
	for {
		tok := s.next()
		switch tok.kind {
		case tokEOF:
			return insertData{}, false
		case tokPunct:
			switch text[tok.start] {
			case '(', '[':
				depth++
			case ')', ']':
				depth--
			}
			continue
		case tokWord:
		default:
			continue
		}
		if depth != 0 {
			continue
		}
		word := tok.text(text)
		switch {
		case strings.EqualFold(word, "SELECT"), strings.EqualFold(word, "WITH"):
			return insertData{}, false
		case strings.EqualFold(word, "VALUES"):
			return insertData{
				Stmt:      strings.TrimSpace(string(text[:tok.start])),
				Format:    "Values",
				DataStart: tok.end,
			}, true
		case strings.EqualFold(word, "FORMAT"):
			name := s.next()
			if name.kind != tokWord && name.kind != tokQuotedIdent {
				return insertData{}, false
			}
			format := name.text(text)
			if name.kind == tokQuotedIdent {
				format = format[1 : len(format)-1]
			}
			return insertData{
				Stmt:      strings.TrimSpace(string(text[:tok.start])),
				Format:    format,
				DataStart: dataStart(text, name.end),
			}, true
		}
	}
}

// dataStart skips spaces and tabs after the format name and then one newline
// (\n or \r\n) if it comes next.
func dataStart(text []byte, i int) int {
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	switch {
	case i < len(text) && text[i] == '\n':
		return i + 1
	case i+1 < len(text) && text[i] == '\r' && text[i+1] == '\n':
		return i + 2
	}
	for i < len(text) && isSpace(text[i]) {
		i++
	}
	return i
}

// formatClause returns the name in a trailing "FORMAT <name>" clause of a
// query, or "" when there is none.
func formatClause(query string) string {
	q := strings.TrimRight(query, " \t\r\n;")
	i := len(q)
	for i > 0 && isIdentByte(q[i-1]) {
		i--
	}
	name := q[i:]
	if name == "" {
		return ""
	}
	rest := q[:i]
	trimmed := strings.TrimRight(rest, " \t\r\n")
	if len(trimmed) == len(rest) || len(trimmed) < 6 {
		return ""
	}
	kw := trimmed[len(trimmed)-6:]
	if !strings.EqualFold(kw, "FORMAT") {
		return ""
	}
	if len(trimmed) > 6 && isIdentByte(trimmed[len(trimmed)-7]) {
		return ""
	}
	return name
}

// isHello reports whether q is clickhouse-go's connection handshake query.
func isHello(q string) bool {
	return strings.Join(strings.Fields(q), " ") == "SELECT displayName(), version(), revision(), timezone()"
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokQuotedIdent // `x` or "x"
	tokString      // 'x'
	tokPunct
	tokOther
)

type token struct {
	kind       tokKind
	start, end int
}

func (t token) text(src []byte) string { return string(src[t.start:t.end]) }

// lexer splits SQL into words, quoted names, strings and punctuation,
// skipping whitespace and comments. It is only as precise as parseInsert
// needs.
type lexer struct {
	src []byte
	pos int
}

func (l *lexer) next() token {
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		switch {
		case isSpace(c):
			l.pos++
		case c == '-' && l.pos+1 < len(src) && src[l.pos+1] == '-', c == '#':
			for l.pos < len(src) && src[l.pos] != '\n' {
				l.pos++
			}
		case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '*':
			end := strings.Index(string(src[l.pos+2:]), "*/")
			if end < 0 {
				l.pos = len(src)
			} else {
				l.pos += 2 + end + 2
			}
		default:
			return l.scan()
		}
	}
	return token{kind: tokEOF, start: l.pos, end: l.pos}
}

func (l *lexer) scan() token {
	src, start := l.src, l.pos
	c := src[start]
	switch {
	case isIdentByte(c):
		for l.pos < len(src) && isIdentByte(src[l.pos]) {
			l.pos++
		}
		return token{kind: tokWord, start: start, end: l.pos}
	case c == '\'' || c == '"' || c == '`':
		l.pos++
		for l.pos < len(src) {
			switch src[l.pos] {
			case '\\':
				l.pos += 2
				continue
			case c:
				if l.pos+1 < len(src) && src[l.pos+1] == c { // doubled quote
					l.pos += 2
					continue
				}
				l.pos++
				kind := tokQuotedIdent
				if c == '\'' {
					kind = tokString
				}
				return token{kind: kind, start: start, end: l.pos}
			}
			l.pos++
		}
		l.pos = len(src)
		return token{kind: tokOther, start: start, end: l.pos}
	case strings.IndexByte("()[],;.", c) >= 0:
		l.pos++
		return token{kind: tokPunct, start: start, end: l.pos}
	default:
		l.pos++
		return token{kind: tokOther, start: start, end: l.pos}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// quoteIdent quotes a name with backticks for use in SQL.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// quoteString quotes s as a SQL string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(s) + "'"
}

// validSettingName accepts names like max_threads or custom_x.y.
func validSettingName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}
