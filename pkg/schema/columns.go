package schema

import (
	"fmt"
	"strings"
	"sync"

	"github.com/auditpipe/auditpipe/schemas"
)

// Column is one column of the contract: its name and its ClickHouse type as
// DESCRIBE TABLE prints it (for example "Map(String, String)").
type Column struct {
	Name   string
	CHType string
}

var seedColumns = sync.OnceValues(func() ([]Column, error) {
	return ParseColumns(schemas.SeedColumns)
})

// Columns returns the seed's 46 columns in table order, parsed from the
// embedded schemas/seed_columns.tsv. The caller owns the returned slice. It
// panics if the embedded file is malformed, which the package's tests rule
// out.
func Columns() []Column {
	cols, err := seedColumns()
	if err != nil {
		panic(fmt.Sprintf("schema: embedded seed_columns.tsv: %v", err))
	}
	return append([]Column(nil), cols...)
}

// ParseColumns parses "name<TAB>type" lines (the seed_columns.tsv format).
// Blank lines are ignored; types are normalized with NormalizeType. Column
// names must be unique.
func ParseColumns(tsv string) ([]Column, error) {
	var cols []Column
	seen := make(map[string]int)
	for i, line := range strings.Split(tsv, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, typ, ok := strings.Cut(line, "\t")
		if !ok || strings.Contains(typ, "\t") {
			return nil, fmt.Errorf("line %d: want name<TAB>type, got %q", i+1, line)
		}
		name, typ = strings.TrimSpace(name), NormalizeType(typ)
		if name == "" || typ == "" {
			return nil, fmt.Errorf("line %d: empty name or type", i+1)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("line %d: column %q already on line %d", i+1, name, prev)
		}
		seen[name] = i + 1
		cols = append(cols, Column{Name: name, CHType: typ})
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("no columns")
	}
	return cols, nil
}

// NormalizeType returns a ClickHouse type expression in DESCRIBE TABLE's
// spelling: runs of white space collapsed, none around parentheses, one
// space after each comma. "Map(String,String)" becomes "Map(String, String)".
// Quoted parts ('UTC' in DateTime('UTC')) are kept verbatim.
func NormalizeType(t string) string {
	var b strings.Builder
	var quote byte
	space := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		if quote != 0 {
			b.WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(t) {
					i++
					b.WriteByte(t[i])
				}
			case quote:
				quote = 0
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			space = true
			continue
		case '(', ')', ',':
			space = false
			b.WriteByte(c)
			if c == ',' {
				space = true
			}
			continue
		}
		if space && b.Len() > 0 && !strings.HasSuffix(b.String(), "(") {
			b.WriteByte(' ')
		}
		space = false
		if c == '\'' || c == '"' || c == '`' {
			quote = c
		}
		b.WriteByte(c)
	}
	return b.String()
}
