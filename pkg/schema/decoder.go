package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/schemas"
)

// Errors a Decoder classifies as permanent: the record can never be decoded
// as it is, so a consumer sends it to the dead-letter topic instead of
// retrying. Any other Decode error (a registry that cannot be reached,
// ErrNewerWriter) is transient.
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

// ErrNewerWriter is wrapped by Decode for a record whose writer schema has
// fields that neither the current schema nor any earlier release has: a
// newer release wrote it. Decoding it would drop those fields, so it is
// transient, not permanent: the consumer waits (retrying) until a release
// that knows them takes over, as it does during a rolling upgrade that
// started the enrichers before the loaders.
var ErrNewerWriter = errors.New("record written with a newer schema")

// DefaultMaxSchemas is the Decoder's default bound on cached writer schemas.
const DefaultMaxSchemas = 128

// Decoder decodes Confluent wire-format records written with any Avro
// schema compatible with the current one into AuditLog. It fetches each
// writer schema from the registry by the record's id once, resolves it
// against the current (reader) schema, and caches the result; the cache
// holds at most maxSchemas ids and evicts the oldest first. Fields the
// writer lacks take the reader's defaults. Fields the reader lacks are
// skipped when an earlier release had them (they were deprecated and
// removed); a writer with fields no release of this build knows is newer
// than the Decoder, and its records fail with ErrNewerWriter instead of
// losing those fields.
//
// A Decoder is safe for concurrent use. Decode blocks only when it must
// fetch a writer schema.
type Decoder struct {
	cl         *sr.Client
	reader     avro.Schema
	known      map[string]bool // field paths of every release
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
	releases, err := AvroReleases()
	if err != nil {
		return nil, err
	}
	return newDecoder(cl, reader, releases, maxSchemas)
}

// newDecoder is NewDecoder with the releases whose fields count as known.
func newDecoder(cl *sr.Client, reader avro.Schema, releases []AvroRelease, maxSchemas int) (*Decoder, error) {
	if maxSchemas <= 0 {
		maxSchemas = DefaultMaxSchemas
	}
	known := map[string]bool{}
	for _, r := range releases {
		sch, err := avro.ParseWithCache(r.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", r.File, err)
		}
		for path := range schemaFields(sch) {
			known[path] = true
		}
	}
	return &Decoder{cl: cl, reader: reader, known: known, maxSchemas: maxSchemas, schemas: make(map[int]avro.Schema)}, nil
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
	sch, unknown, err := d.resolve(ws)
	if err != nil {
		return nil, fmt.Errorf("%w: id %d: %w", ErrIncompatibleSchema, id, err)
	}
	if len(unknown) > 0 {
		// Not cached: the verdict holds until a newer release replaces
		// this one, and a retry costs one registry request.
		return nil, fmt.Errorf("%w: schema id %d has fields this release (schema v%d) does not know: %s; decoding would drop them, "+
			"so its records wait for a release that knows them (upgrade the loaders before the enrichers)",
			ErrNewerWriter, id, schemas.AvroVersion, strings.Join(unknown, ", "))
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
// with the reader's named types) and resolves it against the reader
// schema. unknown lists the writer's fields no release knows (sorted).
func (d *Decoder) resolve(ws sr.Schema) (_ avro.Schema, unknown []string, _ error) {
	if ws.Type != sr.TypeAvro {
		return nil, nil, fmt.Errorf("schema type %s, want AVRO", ws.Type)
	}
	if len(ws.References) > 0 {
		return nil, nil, errors.New("schema references are not supported")
	}
	writer, err := avro.ParseWithCache(ws.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, nil, fmt.Errorf("parsing: %w", err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(d.reader, writer)
	if err != nil {
		return nil, nil, fmt.Errorf("resolving against the current schema: %w", err)
	}
	for _, path := range sortedKeys(schemaFields(writer)) {
		if !d.known[path] {
			unknown = append(unknown, path)
		}
	}
	return resolved, unknown, nil
}
