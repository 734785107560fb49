package avroenc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Encoder writes AuditLog values in the Confluent wire format (magic byte,
// 4-byte schema id, Avro body) with hamba/avro, the same bytes as the
// registry Serde under the embedded contract schema (written as three
// records, maps in their array-of-entries form: see wire.go). It reuses its writers, their
// records and the output buffers: encoding allocates nothing. It is safe
// for concurrent use.
type Encoder struct {
	sch    wireSchemas
	header [5]byte
	// writers holds *writer: each encodes one record at a time into its
	// own buffer, which is then copied out.
	writers sync.Pool
	// outputs holds output buffers (*[]byte) that EncodeBuffer hands out
	// and Release takes back; boxes recycles the *[]byte holders, so that
	// a Release does not allocate one.
	outputs sync.Pool
	boxes   sync.Pool
}

// New returns an Encoder for the registry schema id of the embedded
// contract schema, after checking that it writes that schema's bytes.
func New(id int) (*Encoder, error) {
	sch, err := splitSchema()
	if err != nil {
		return nil, err
	}
	if id < 0 || id > math.MaxInt32 {
		return nil, fmt.Errorf("schema id %d out of range", id)
	}
	e := &Encoder{sch: sch}
	binary.BigEndian.PutUint32(e.header[1:], uint32(id))
	if err := e.selfCheck(); err != nil {
		return nil, err
	}
	return e, nil
}

// selfCheck encodes a probe record, one entry in every map, and compares
// the bytes with the contract schema's own encoding: a schema change the
// map-entry form does not cover fails here, at startup, rather than on
// every record.
func (e *Encoder) selfCheck() error {
	kv := map[string]string{"k": "v"}
	probe := schema.AuditLog{ReceivedAt: time.Unix(1, 0), EventTime: time.Unix(2, 0), Actor: kv, Tags: kv,
		Resources: []string{"r"}, Enrichments: []schema.Enrichment{{Data: kv, Name: "n"}}}
	want, err := schema.MarshalAvro(&probe)
	if err != nil {
		return fmt.Errorf("checking the avro encoder: %w", err)
	}
	got, err := e.EncodeLog(&probe)
	if err != nil {
		return fmt.Errorf("checking the avro encoder: %w", err)
	}
	if !bytes.Equal(got[len(e.header):], want) {
		return errors.New("checking the avro encoder: its bytes differ from the contract schema's (a map field the encoder does not know?)")
	}
	return nil
}

// Encode returns the Confluent wire-format record of v, a schema.AuditLog
// or *schema.AuditLog, after AuditLog.Validate (same contract as the
// registry Serde's Encode). It is safe for concurrent use.
func (e *Encoder) Encode(v any) ([]byte, error) {
	switch x := v.(type) {
	case schema.AuditLog:
		return e.EncodeLog(&x)
	case *schema.AuditLog:
		return e.EncodeLog(x)
	}
	return nil, fmt.Errorf("encoding %T: want schema.AuditLog", v)
}

// EncodeLog is Encode without the interface conversion: l is read, not
// retained. The result is the caller's. It is safe for concurrent use.
func (e *Encoder) EncodeLog(l *schema.AuditLog) ([]byte, error) {
	return e.encode(nil, l)
}

// maxPooled bounds the buffers kept for reuse.
const maxPooled = 256 << 10

// EncodeBuffer is EncodeLog into a buffer of the Encoder's pool. The
// caller owns the buffer until it passes it to Release, after which
// neither the caller nor anything the caller handed it to (a Kafka client,
// say) may touch it. A buffer never released is simply garbage-collected.
// It is safe for concurrent use.
func (e *Encoder) EncodeBuffer(l *schema.AuditLog) ([]byte, error) {
	var out []byte
	if bp, _ := e.outputs.Get().(*[]byte); bp != nil {
		out, *bp = *bp, nil // the buffer now belongs to the caller
		e.boxes.Put(bp)
	}
	return e.encode(out, l)
}

// Release returns a buffer from EncodeBuffer to the pool (buffers above
// 256 KiB are dropped). b must not be used afterwards.
func (e *Encoder) Release(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooled {
		return
	}
	bp, _ := e.boxes.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = b[:0]
	e.outputs.Put(bp)
}

// writer is a hamba writer and the middle record it encodes.
type writer struct {
	w   *avro.Writer
	mid wireMiddle
}

// encode appends the wire-format record of l to out[:0] after validating l.
func (e *Encoder) encode(out []byte, l *schema.AuditLog) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	w, _ := e.writers.Get().(*writer)
	if w == nil {
		w = &writer{w: avro.NewWriter(nil, 4096, avro.WithWriterConfig(schema.AvroAPI))}
	}
	w.w.Reset(nil)
	w.mid.set(l)
	w.w.WriteVal(e.sch.head, l)
	w.w.WriteVal(e.sch.middle, &w.mid)
	w.w.WriteVal(e.sch.tail, l)
	w.mid.clear()
	if err := w.w.Error; err != nil {
		return nil, fmt.Errorf("encoding avro: %w", err) // the writer is dropped with its error
	}
	out = append(append(out[:0], e.header[:]...), w.w.Buffer()...)
	if cap(w.w.Buffer()) <= maxPooled {
		e.writers.Put(w)
	}
	return out, nil
}
