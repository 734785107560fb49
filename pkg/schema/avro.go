package schema

import (
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/schemas"
)

// Bounds on what one decoded record may allocate. They keep a corrupt or
// hostile body from asking for gigabytes: a Kafka record is at most a few
// MiB, so no real string or array comes near them.
const (
	maxAvroBytes    = 16 << 20 // longest string
	maxAvroElements = 1 << 16  // most elements in one array
)

// AvroAPI encodes and decodes every auditpipe record. Arrays and maps are
// written without the optional byte-size block header, the encoding every
// Avro reader understands. It is immutable and safe for concurrent use.
var AvroAPI = avro.Config{
	DisableBlockSizeHeader: true,
	MaxByteSliceSize:       maxAvroBytes,
	MaxSliceAllocSize:      maxAvroElements,
}.Freeze()

var parsedAvro = sync.OnceValues(func() (avro.Schema, error) {
	// A private cache: writer schemas of other versions, parsed later under
	// the same full name, must not replace this one.
	return avro.ParseWithCache(schemas.AvroSchema, "", &avro.SchemaCache{})
})

// ParseAvro returns the parsed embedded Avro schema of AuditLog. The schema
// is parsed once and shared; it is immutable and safe for concurrent use.
func ParseAvro() (avro.Schema, error) {
	sch, err := parsedAvro()
	if err != nil {
		return nil, fmt.Errorf("parsing embedded avro schema: %w", err)
	}
	return sch, nil
}

// MarshalAvro returns the Avro binary body (no wire-format header) of l
// under the current schema, after Validate.
func MarshalAvro(l *AuditLog) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	sch, err := ParseAvro()
	if err != nil {
		return nil, err
	}
	b, err := AvroAPI.Marshal(sch, l)
	if err != nil {
		return nil, fmt.Errorf("encoding avro: %w", err)
	}
	return b, nil
}

// UnmarshalAvro decodes an Avro binary body written with the current
// schema into l, replacing its contents. A body it cannot decode yields an
// error wrapping ErrMalformed.
func UnmarshalAvro(b []byte, l *AuditLog) error {
	sch, err := ParseAvro()
	if err != nil {
		return err
	}
	*l = AuditLog{}
	if err := AvroAPI.Unmarshal(sch, b, l); err != nil {
		return fmt.Errorf("%w: decoding avro: %w", ErrMalformed, err)
	}
	return nil
}
