package schema

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Errors a Decoder classifies as permanent: the record can never be decoded
// as it is, so a consumer sends it to the dead-letter topic instead of
// retrying. Any other Decode error (a registry that cannot be reached) is
// transient.
var (
	// ErrMalformed: no Confluent wire-format header, or an Avro body that
	// does not decode under its writer schema.
	ErrMalformed = errors.New("malformed avro record")
	// ErrUnknownSchema: the registry has no schema under the record's id.
	ErrUnknownSchema = errors.New("unknown writer schema id")
	// ErrIncompatibleSchema: the writer schema is not Avro, does not parse,
	// or cannot be read as the current AuditLog schema.
	ErrIncompatibleSchema = errors.New("incompatible writer schema")
)

// DefaultMaxSchemas is the Decoder's default bound on cached writer schemas.
const DefaultMaxSchemas = 128

// Decoder decodes Confluent wire-format records written with any Avro
// schema compatible with the current one into AuditLog. It fetches each
// writer schema from the registry by the record's id once, resolves it
// against the current (reader) schema, and caches the result; the cache
// holds at most maxSchemas ids and evicts the oldest first. Fields the
// writer lacks take the reader's defaults; fields the reader lacks are
// skipped.
//
// A Decoder is safe for concurrent use. Decode blocks only when it must
// fetch a writer schema.
type Decoder struct {
	cl         *sr.Client
	reader     avro.Schema
	maxSchemas int

	mu      sync.Mutex
	schemas map[int]avro.Schema // writer id → resolved read schema
	order   []int               // insertion order, for eviction
}

// NewDecoder returns a Decoder fetching writer schemas through cl and
// caching at most maxSchemas of them (DefaultMaxSchemas when ≤ 0).
func NewDecoder(cl *sr.Client, maxSchemas int) (*Decoder, error) {
	if cl == nil {
		return nil, errors.New("creating avro decoder: nil registry client")
	}
	reader, err := ParseAvro()
	if err != nil {
		return nil, err
	}
	if maxSchemas <= 0 {
		maxSchemas = DefaultMaxSchemas
	}
	return &Decoder{cl: cl, reader: reader, maxSchemas: maxSchemas, schemas: make(map[int]avro.Schema)}, nil
}

// Decode decodes one wire-format record (5-byte header, Avro body) into l,
// replacing its contents, and returns the writer schema id. Permanent
// failures wrap ErrMalformed, ErrUnknownSchema or ErrIncompatibleSchema.
func (d *Decoder) Decode(ctx context.Context, b []byte, l *AuditLog) (int, error) {
	var h sr.ConfluentHeader
	id, body, err := h.DecodeID(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	sch, err := d.schema(ctx, id)
	if err != nil {
		return id, err
	}
	*l = AuditLog{}
	if err := AvroAPI.Unmarshal(sch, body, l); err != nil {
		return id, fmt.Errorf("%w: decoding avro body (schema id %d): %w", ErrMalformed, id, err)
	}
	return id, nil
}

// schema returns the resolved read schema for writer id, fetching it on a
// cache miss. Concurrent misses on one id may fetch it more than once,
// which is harmless.
func (d *Decoder) schema(ctx context.Context, id int) (avro.Schema, error) {
	d.mu.Lock()
	sch, ok := d.schemas[id]
	d.mu.Unlock()
	if ok {
		return sch, nil
	}

	ws, err := d.cl.SchemaByID(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: %d: %w", ErrUnknownSchema, id, err)
		}
		return nil, fmt.Errorf("fetching writer schema %d: %w", id, err)
	}
	sch, err = d.resolve(ws)
	if err != nil {
		return nil, fmt.Errorf("%w: id %d: %w", ErrIncompatibleSchema, id, err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.schemas[id]; !ok {
		if len(d.order) >= d.maxSchemas {
			delete(d.schemas, d.order[0])
			d.order = d.order[1:]
		}
		d.schemas[id] = sch
		d.order = append(d.order, id)
	}
	return sch, nil
}

// resolve parses a writer schema (in a private cache, so it cannot clash
// with the reader's named types) and resolves it against the reader schema.
func (d *Decoder) resolve(ws sr.Schema) (avro.Schema, error) {
	if ws.Type != sr.TypeAvro {
		return nil, fmt.Errorf("schema type %s, want AVRO", ws.Type)
	}
	if len(ws.References) > 0 {
		return nil, errors.New("schema references are not supported")
	}
	writer, err := avro.ParseWithCache(ws.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(d.reader, writer)
	if err != nil {
		return nil, fmt.Errorf("resolving against the current schema: %w", err)
	}
	return resolved, nil
}
