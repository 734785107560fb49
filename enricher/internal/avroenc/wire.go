package avroenc

import (
	"encoding/json"
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/schemas"
)

// The Avro binary encoding of a map<string> (blocks of a count, then that
// many key and value strings, then 0) is byte for byte the encoding of an
// array of records {key: string, value: string}. The encoder writes maps
// through that array form: hamba encodes a Go slice without the
// reflection-driven map iteration (and its allocations) that a Go map
// costs, and the record's bytes stay exactly those of the contract schema
// (TestEncodeMatchesHamba decodes them with it and compares bytes).

// keyValue is one entry of a map<string>.
type keyValue struct {
	Key   string `avro:"key"`
	Value string `avro:"value"`
}

// wireEnrichment is a schema.Enrichment with its data map as entries.
type wireEnrichment struct {
	*schema.Enrichment
	Data []keyValue `avro:"data"`
}

// wireLog is a schema.AuditLog with its maps as entries: the outer fields
// take the place of the embedded record's fields of the same name.
type wireLog struct {
	*schema.AuditLog
	Actor       []keyValue       `avro:"actor"`
	Tags        []keyValue       `avro:"tags"`
	Enrichments []wireEnrichment `avro:"enrichments"`
}

// set points w at l, reusing w's slices.
func (w *wireLog) set(l *schema.AuditLog) {
	w.AuditLog = l
	w.Actor = entries(w.Actor[:0], l.Actor)
	w.Tags = entries(w.Tags[:0], l.Tags)
	n := len(l.Enrichments)
	if cap(w.Enrichments) < n {
		w.Enrichments = append(w.Enrichments[:cap(w.Enrichments)], make([]wireEnrichment, n-cap(w.Enrichments))...)
	}
	w.Enrichments = w.Enrichments[:n]
	for i := range l.Enrichments {
		e := &w.Enrichments[i]
		e.Enrichment = &l.Enrichments[i]
		e.Data = entries(e.Data[:0], l.Enrichments[i].Data)
	}
}

// clear drops w's references to the last record (its slices stay).
func (w *wireLog) clear() {
	w.AuditLog = nil
	clear(w.Actor)
	clear(w.Tags)
	for i := range w.Enrichments {
		w.Enrichments[i].Enrichment = nil
		clear(w.Enrichments[i].Data)
	}
}

func entries(dst []keyValue, m map[string]string) []keyValue {
	for k, v := range m {
		dst = append(dst, keyValue{Key: k, Value: v})
	}
	return dst
}

// wireSchema returns the contract schema with every map<string> written
// as an array of {key, value} records (each with a name of its own).
func wireSchema() (avro.Schema, error) {
	var doc any
	if err := json.Unmarshal([]byte(schemas.AvroSchema), &doc); err != nil {
		return nil, fmt.Errorf("reading the contract schema: %w", err)
	}
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["type"].(map[string]any); ok && t["type"] == "map" && t["values"] == "string" {
				n++
				x["type"] = map[string]any{"type": "array", "items": map[string]any{
					"type": "record", "name": fmt.Sprintf("MapEntry%d", n),
					"fields": []any{map[string]any{"name": "key", "type": "string"}, map[string]any{"name": "value", "type": "string"}},
				}}
				if _, ok := x["default"]; ok {
					x["default"] = []any{}
				}
				return
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	sch, err := avro.ParseWithCache(string(b), "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parsing the wire schema: %w", err)
	}
	return sch, nil
}
