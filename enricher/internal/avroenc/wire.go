package avroenc

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

// How the encoder feeds hamba/avro, cheaply and byte for byte.
//
// A record's encoding is its fields' encodings one after the other, so the
// contract record is written as three records: its fields before the
// first one that holds a map (head), those from it through the last one
// that holds a map (middle), and the rest (tail). Head and tail are
// encoded from the schema.AuditLog itself: hamba looks the fields up by
// name and ignores the others.
//
// In the middle, maps are written in their array form: the encoding of a
// map<string> (blocks of a count, then that many key and value strings,
// then 0) is byte for byte that of an array of {key, value} records, and
// hamba encodes a Go slice without the reflective map iteration (and its
// allocations) a Go map costs. New checks the result against the contract
// schema's own encoding at startup; TestEncodeMatchesHamba does so for
// every event type.

// keyValue is one entry of a map<string>.
type keyValue struct {
	Key   string `avro:"key"`
	Value string `avro:"value"`
}

// wireEnrichment is a schema.Enrichment with its data map as entries
// (its own fields, not an embedded Enrichment: hamba looks the type of an
// embedded field up on every record).
type wireEnrichment struct {
	Data     []keyValue `avro:"data"`
	Name     string     `avro:"name"`
	Provider string     `avro:"provider"`
	Type     string     `avro:"type"`
	Value    string     `avro:"value"`
}

// wireMiddle holds the middle fields of a record, maps as entries.
type wireMiddle struct {
	Actor       []keyValue       `avro:"actor"`
	Tags        []keyValue       `avro:"tags"`
	Resources   []string         `avro:"resources"`
	ServiceName string           `avro:"serviceName"`
	Enrichments []wireEnrichment `avro:"enrichments"`
}

// set fills m from l, reusing m's slices.
func (m *wireMiddle) set(l *schema.AuditLog) {
	m.Actor = entries(m.Actor[:0], l.Actor)
	m.Tags = entries(m.Tags[:0], l.Tags)
	m.Resources = l.Resources
	m.ServiceName = l.ServiceName
	n := len(l.Enrichments)
	if cap(m.Enrichments) < n {
		m.Enrichments = slices.Grow(m.Enrichments[:0], n)
	}
	m.Enrichments = m.Enrichments[:n]
	for i := range l.Enrichments {
		e, le := &m.Enrichments[i], &l.Enrichments[i]
		e.Name, e.Provider, e.Type, e.Value = le.Name, le.Provider, le.Type, le.Value
		e.Data = entries(e.Data[:0], le.Data)
	}
}

// clear drops m's references to the last record (its slices stay).
func (m *wireMiddle) clear() {
	clear(m.Actor)
	clear(m.Tags)
	m.Resources, m.ServiceName = nil, ""
	for i := range m.Enrichments {
		e := &m.Enrichments[i]
		e.Name, e.Provider, e.Type, e.Value = "", "", "", ""
		clear(e.Data)
	}
}

func entries(dst []keyValue, m map[string]string) []keyValue {
	for k, v := range m {
		dst = append(dst, keyValue{Key: k, Value: v})
	}
	return dst
}

// wireSchemas are the head, middle and tail records of the contract
// schema.
type wireSchemas struct {
	head, middle, tail avro.Schema
}

// splitSchema splits the contract schema into its head, middle (maps as
// arrays of {key, value} records, each named on its own) and tail.
func splitSchema() (wireSchemas, error) {
	var rec map[string]any
	if err := json.Unmarshal([]byte(schemas.AvroSchema), &rec); err != nil {
		return wireSchemas{}, fmt.Errorf("reading the contract schema: %w", err)
	}
	fields, _ := rec["fields"].([]any)
	first, last := -1, -1
	for i, f := range fields {
		if holdsMap(f) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return wireSchemas{}, fmt.Errorf("the contract schema holds no map")
	}
	n := 0
	for _, f := range fields[first : last+1] {
		mapsAsEntries(f, &n)
	}
	var ws wireSchemas
	for _, part := range []struct {
		name   string
		fields []any
		dst    *avro.Schema
	}{{"Head", fields[:first], &ws.head}, {"Middle", fields[first : last+1], &ws.middle}, {"Tail", fields[last+1:], &ws.tail}} {
		b, err := json.Marshal(map[string]any{"type": "record", "name": "AuditLog" + part.name, "namespace": rec["namespace"], "fields": part.fields})
		if err != nil {
			return wireSchemas{}, err
		}
		if *part.dst, err = avro.ParseWithCache(string(b), "", &avro.SchemaCache{}); err != nil {
			return wireSchemas{}, fmt.Errorf("parsing the %s of the wire schema: %w", part.name, err)
		}
	}
	return ws, nil
}

// holdsMap reports whether a schema (as JSON) holds a map<string>.
func holdsMap(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "map" {
			return true
		}
		for _, e := range x {
			if holdsMap(e) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(x, holdsMap)
	}
	return false
}

// mapsAsEntries rewrites, in place, every field (as JSON) whose type is a
// map<string> into an array of {key, value} records named MapEntry<n>.
func mapsAsEntries(v any, n *int) {
	switch x := v.(type) {
	case map[string]any:
		if t, ok := x["type"].(map[string]any); ok && t["type"] == "map" && t["values"] == "string" {
			*n++
			x["type"] = map[string]any{"type": "array", "items": map[string]any{
				"type": "record", "name": fmt.Sprintf("MapEntry%d", *n),
				"fields": []any{map[string]any{"name": "key", "type": "string"}, map[string]any{"name": "value", "type": "string"}},
			}}
			if _, ok := x["default"]; ok {
				x["default"] = []any{}
			}
			return
		}
		for _, e := range x {
			mapsAsEntries(e, n)
		}
	case []any:
		for _, e := range x {
			mapsAsEntries(e, n)
		}
	}
}
