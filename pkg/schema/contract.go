package schema

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/schemas"
)

// Mismatch is one disagreement between the seed's column list and another
// statement of the contract (the Avro schema, the ClickHouse DDL, the Go
// type, a live DESCRIBE TABLE).
type Mismatch struct {
	Source   string // what disagrees with the seed: "avro", "ddl", "go", ...
	Position int    // 1-based column position; 0 when not about one column
	Problem  string // for example `name: want "eventID", got "eventId"`
}

func (m Mismatch) String() string {
	if m.Position == 0 {
		return m.Source + ": " + m.Problem
	}
	return fmt.Sprintf("%s: column %d: %s", m.Source, m.Position, m.Problem)
}

// CompareColumns compares got against want position by position: name by
// name and type by type (types normalized with NormalizeType), then the
// count. It returns every difference found, labelled with source; nil means
// they agree. A renamed or retyped column yields one mismatch; an inserted
// or dropped one also shifts the positions after it.
func CompareColumns(source string, want, got []Column) []Mismatch {
	var out []Mismatch
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			out = append(out, Mismatch{source, i + 1, fmt.Sprintf("missing column %q %s", want[i].Name, want[i].CHType)})
		case i >= len(want):
			out = append(out, Mismatch{source, i + 1, fmt.Sprintf("unexpected column %q %s", got[i].Name, got[i].CHType)})
		case want[i].Name != got[i].Name:
			out = append(out, Mismatch{source, i + 1, fmt.Sprintf("name: want %q, got %q", want[i].Name, got[i].Name)})
		case NormalizeType(want[i].CHType) != NormalizeType(got[i].CHType):
			out = append(out, Mismatch{source, i + 1, fmt.Sprintf("type of %q: want %s, got %s", want[i].Name, want[i].CHType, got[i].CHType)})
		}
	}
	return out
}

// Contract holds the statements of the schema contract to check against
// each other. EmbeddedContract returns the real ones; tests mutate copies.
type Contract struct {
	SeedColumns string       // seed_columns.tsv text, the source of truth
	AvroSchema  string       // the .avsc text
	DDL         []string     // rendered migration statements, in order (single node)
	Record      reflect.Type // the Go record type (AuditLog)
}

// EmbeddedContract returns the contract as shipped: the embedded seed list
// and Avro schema, the migrations rendered for a single node, and AuditLog.
func EmbeddedContract() (Contract, error) {
	migs, err := Migrations(MigrationOptions{})
	if err != nil {
		return Contract{}, err
	}
	var ddl []string
	for _, m := range migs {
		ddl = append(ddl, m.Statements...)
	}
	return Contract{
		SeedColumns: schemas.SeedColumns,
		AvroSchema:  schemas.AvroSchema,
		DDL:         ddl,
		Record:      reflect.TypeFor[AuditLog](),
	}, nil
}

// Check compares every statement of the contract with the seed's column
// list and returns all mismatches; nil means the contract holds. Beyond
// names and types it reports Avro fields without a default.
func (c Contract) Check() []Mismatch {
	want, err := ParseColumns(c.SeedColumns)
	if err != nil {
		return []Mismatch{{Source: "seed", Problem: err.Error()}}
	}
	var out []Mismatch

	if avroCols, err := AvroColumns(c.AvroSchema); err != nil {
		out = append(out, Mismatch{Source: "avro", Problem: err.Error()})
	} else {
		out = append(out, CompareColumns("avro", want, avroCols)...)
		out = append(out, avroDefaults(c.AvroSchema)...)
	}

	if ddlCols, err := TableColumns(c.DDL, Table); err != nil {
		out = append(out, Mismatch{Source: "ddl", Problem: err.Error()})
	} else {
		out = append(out, CompareColumns("ddl", want, ddlCols)...)
	}

	if goCols, err := StructColumns(c.Record); err != nil {
		out = append(out, Mismatch{Source: "go", Problem: err.Error()})
	} else {
		out = append(out, CompareColumns("go", want, goCols)...)
	}
	return out
}

// AvroColumns parses an Avro record schema and returns its fields as
// columns, each Avro type mapped back to the ClickHouse type it stands for
// (string → String, long timestamp-millis → DateTime, long → UInt32,
// double → Float64, boolean → Bool, map → Map(String, V), array → Array(V),
// record → Tuple(name T, ...)). A type outside the mapping comes back as
// "<avro T>", so it shows up as a mismatch.
func AvroColumns(schemaText string) ([]Column, error) {
	sch, err := avro.ParseWithCache(schemaText, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parsing avro schema: %w", err)
	}
	rec, ok := sch.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("avro schema is a %s, want a record", sch.Type())
	}
	cols := make([]Column, 0, len(rec.Fields()))
	for _, f := range rec.Fields() {
		cols = append(cols, Column{Name: f.Name(), CHType: avroToCH(f.Type())})
	}
	return cols, nil
}

func avroToCH(s avro.Schema) string {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch s := s.(type) {
	case *avro.PrimitiveSchema:
		lt := ""
		if l := s.Logical(); l != nil {
			lt = string(l.Type())
		}
		switch {
		case s.Type() == avro.String && lt == "":
			return "String"
		case s.Type() == avro.Boolean && lt == "":
			return "Bool"
		case s.Type() == avro.Double && lt == "":
			return "Float64"
		case s.Type() == avro.Long && lt == "":
			return "UInt32"
		case s.Type() == avro.Long && lt == string(avro.TimestampMillis):
			return "DateTime"
		}
		if lt != "" {
			return fmt.Sprintf("<avro %s %s>", s.Type(), lt)
		}
		return fmt.Sprintf("<avro %s>", s.Type())
	case *avro.MapSchema:
		return "Map(String, " + avroToCH(s.Values()) + ")"
	case *avro.ArraySchema:
		return "Array(" + avroToCH(s.Items()) + ")"
	case *avro.RecordSchema:
		parts := make([]string, 0, len(s.Fields()))
		for _, f := range s.Fields() {
			parts = append(parts, f.Name()+" "+avroToCH(f.Type()))
		}
		return "Tuple(" + strings.Join(parts, ", ") + ")"
	default:
		return fmt.Sprintf("<avro %s>", s.Type())
	}
}

// avroDefaults reports every field, nested ones included, without a default:
// BACKWARD evolution needs one on each field a future reader may miss.
func avroDefaults(schemaText string) []Mismatch {
	sch, err := avro.ParseWithCache(schemaText, "", &avro.SchemaCache{})
	if err != nil {
		return nil // reported by AvroColumns
	}
	var out []Mismatch
	var walk func(path string, s avro.Schema)
	walk = func(path string, s avro.Schema) {
		switch s := s.(type) {
		case *avro.RecordSchema:
			for _, f := range s.Fields() {
				p := strings.TrimPrefix(path+"."+f.Name(), ".")
				if !f.HasDefault() {
					out = append(out, Mismatch{Source: "avro", Problem: fmt.Sprintf("field %q has no default", p)})
				}
				walk(p, f.Type())
			}
		case *avro.ArraySchema:
			walk(path, s.Items())
		case *avro.MapSchema:
			walk(path, s.Values())
		}
	}
	walk("", sch)
	return out
}

var timeType = reflect.TypeFor[time.Time]()

// StructColumns returns the avro-tagged fields of struct type t as columns,
// each Go type mapped to the ClickHouse type it stands for (string →
// String, time.Time → DateTime, int64 → UInt32, float64 → Float64, bool →
// Bool, map[string]V → Map(String, V), []V → Array(V), struct → Tuple(tag T,
// ...)). A field without an avro tag is an error; a type outside the mapping
// comes back as "<go T>".
func StructColumns(t reflect.Type) ([]Column, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("record type %v is not a struct", t)
	}
	cols := make([]Column, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("avro")
		if !ok || tag == "" || tag == "-" {
			return nil, fmt.Errorf("field %s.%s has no avro tag", t.Name(), f.Name)
		}
		cols = append(cols, Column{Name: tag, CHType: goToCH(f.Type)})
	}
	return cols, nil
}

func goToCH(t reflect.Type) string {
	switch {
	case t == timeType:
		return "DateTime"
	case t.Kind() == reflect.String:
		return "String"
	case t.Kind() == reflect.Int64:
		return "UInt32"
	case t.Kind() == reflect.Float64:
		return "Float64"
	case t.Kind() == reflect.Bool:
		return "Bool"
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return "Map(String, " + goToCH(t.Elem()) + ")"
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		return "Array(" + goToCH(t.Elem()) + ")"
	case t.Kind() == reflect.Struct:
		cols, err := StructColumns(t)
		if err != nil {
			return fmt.Sprintf("<go %s: %v>", t, err)
		}
		parts := make([]string, 0, len(cols))
		for _, c := range cols {
			parts = append(parts, c.Name+" "+c.CHType)
		}
		return "Tuple(" + strings.Join(parts, ", ") + ")"
	default:
		return fmt.Sprintf("<go %s>", t)
	}
}
