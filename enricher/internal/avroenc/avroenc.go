package avroenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// fields is the record layout this encoder writes, in order: name and
// Avro type (logical type after a slash).
var fields = []struct{ name, typ string }{
	{"workspaceID", "string"}, {"sourceID", "string"}, {"sourceType", "string"}, {"sourceTTL", "long"},
	{"receivedAt", "long/timestamp-millis"}, {"id", "string"}, {"eventTime", "long/timestamp-millis"},
	{"eventName", "string"}, {"eventID", "string"},
	{"srcIP", "string"}, {"srcASCountryCode", "string"}, {"srcASNumber", "long"}, {"srcASOrganization", "string"},
	{"srcCity", "string"}, {"srcConnectionType", "string"}, {"srcISP", "string"}, {"srcLatitude", "double"},
	{"srcLongitude", "double"}, {"srcUserType", "string"},
	{"dstIP", "string"}, {"dstASCountryCode", "string"}, {"dstASNumber", "long"}, {"dstASOrganization", "string"},
	{"dstCity", "string"}, {"dstConnectionType", "string"}, {"dstISP", "string"}, {"dstLatitude", "double"},
	{"dstLongitude", "double"}, {"dstUserType", "string"},
	{"actor", "map<string>"}, {"tags", "map<string>"}, {"resources", "array<string>"}, {"serviceName", "string"},
	{"enrichments", "array<record>"}, {"readOnly", "boolean"}, {"rawLog", "string"}, {"eventType", "string"},
	{"actorType", "string"}, {"actorIP", "string"}, {"actorUserID", "string"}, {"actorUserEmail", "string"},
	{"apiKeyID", "string"}, {"apiKeyType", "string"}, {"serviceAccountID", "string"}, {"projectID", "string"},
	{"projectName", "string"},
}

var enrichmentFields = []struct{ name, typ string }{
	{"data", "map<string>"}, {"name", "string"}, {"provider", "string"}, {"type", "string"}, {"value", "string"},
}

func describe(s avro.Schema) string {
	switch t := s.(type) {
	case *avro.PrimitiveSchema:
		if t.Logical() != nil {
			return string(t.Type()) + "/" + string(t.Logical().Type())
		}
		return string(t.Type())
	case *avro.MapSchema:
		return "map<" + describe(t.Values()) + ">"
	case *avro.ArraySchema:
		return "array<" + describe(t.Items()) + ">"
	case *avro.RecordSchema:
		return "record"
	}
	return string(s.Type())
}

func checkRecord(s avro.Schema, want []struct{ name, typ string }, what string) error {
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return fmt.Errorf("%s: not a record", what)
	}
	got := rec.Fields()
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d fields, encoder writes %d", what, len(got), len(want))
	}
	for i, f := range got {
		if f.Name() != want[i].name || describe(f.Type()) != want[i].typ {
			return fmt.Errorf("%s field %d: schema has %s %s, encoder writes %s %s", what, i, f.Name(), describe(f.Type()), want[i].name, want[i].typ)
		}
	}
	return nil
}

// Check reports whether sch (the contract schema) has exactly the layout
// this encoder writes. Use the encoder only when it returns nil.
func Check(sch avro.Schema) error {
	if err := checkRecord(sch, fields, "record"); err != nil {
		return err
	}
	for _, f := range sch.(*avro.RecordSchema).Fields() {
		if f.Name() == "enrichments" {
			return checkRecord(f.Type().(*avro.ArraySchema).Items(), enrichmentFields, "enrichments item")
		}
	}
	return errors.New("record: no enrichments field")
}

// Encoder writes AuditLog values with a fixed schema id.
type Encoder struct {
	id uint32
	// scratch holds encoding buffers (*[]byte): EncodeLog encodes into
	// one and copies the record out at its exact size (one allocation);
	// EncodeBuffer hands the buffer itself out and Release takes it back.
	scratch sync.Pool
	// boxes recycles the *[]byte holders, so that a Release does not
	// allocate one.
	boxes sync.Pool
}

// New returns an Encoder for the registry schema id, after checking the
// embedded contract schema's layout.
func New(id int) (*Encoder, error) {
	sch, err := schema.ParseAvro()
	if err != nil {
		return nil, err
	}
	if err := Check(sch); err != nil {
		return nil, fmt.Errorf("checking avro layout: %w", err)
	}
	if id < 0 || id > math.MaxInt32 {
		return nil, fmt.Errorf("schema id %d out of range", id)
	}
	return &Encoder{id: uint32(id)}, nil
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

// maxScratch bounds the buffers kept in the pool.
const maxScratch = 256 << 10

// EncodeLog is Encode without the interface conversion: l is read, not
// retained. The result is the caller's. It is safe for concurrent use.
func (e *Encoder) EncodeLog(l *schema.AuditLog) ([]byte, error) {
	b, err := e.EncodeBuffer(l)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), b...) // not zeroed first, unlike make
	e.Release(b)
	return out, nil
}

// EncodeBuffer is EncodeLog without the copy: the record is written into a
// buffer of the Encoder's pool and that buffer is returned. The caller
// owns it until it passes it to Release, after which neither the caller
// nor anything the caller handed it to (a Kafka client, say) may touch it.
// A buffer never released is simply garbage-collected. It is safe for
// concurrent use.
func (e *Encoder) EncodeBuffer(l *schema.AuditLog) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	bp, _ := e.scratch.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := append((*bp)[:0], 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[1:], e.id)
	*bp = nil // the buffer now belongs to the caller, not to bp
	e.boxes.Put(bp)
	return AppendBody(b, l), nil
}

// Release returns a buffer from EncodeBuffer to the pool (buffers above
// 256 KiB are dropped). b must not be used afterwards.
func (e *Encoder) Release(b []byte) {
	if cap(b) == 0 || cap(b) > maxScratch {
		return
	}
	bp, _ := e.boxes.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = b[:0]
	e.scratch.Put(bp)
}

// AppendBody appends the Avro binary body of l (no header, no validation).
func AppendBody(b []byte, l *schema.AuditLog) []byte {
	b = str(b, l.WorkspaceID)
	b = str(b, l.SourceID)
	b = str(b, l.SourceType)
	b = long(b, l.SourceTTL)
	b = long(b, l.ReceivedAt.UnixMilli())
	b = str(b, l.ID)
	b = long(b, l.EventTime.UnixMilli())
	b = str(b, l.EventName)
	b = str(b, l.EventID)
	b = str(b, l.SrcIP)
	b = str(b, l.SrcASCountryCode)
	b = long(b, l.SrcASNumber)
	b = str(b, l.SrcASOrganization)
	b = str(b, l.SrcCity)
	b = str(b, l.SrcConnectionType)
	b = str(b, l.SrcISP)
	b = double(b, l.SrcLatitude)
	b = double(b, l.SrcLongitude)
	b = str(b, l.SrcUserType)
	b = str(b, l.DstIP)
	b = str(b, l.DstASCountryCode)
	b = long(b, l.DstASNumber)
	b = str(b, l.DstASOrganization)
	b = str(b, l.DstCity)
	b = str(b, l.DstConnectionType)
	b = str(b, l.DstISP)
	b = double(b, l.DstLatitude)
	b = double(b, l.DstLongitude)
	b = str(b, l.DstUserType)
	b = strMap(b, l.Actor)
	b = strMap(b, l.Tags)
	if len(l.Resources) > 0 {
		b = long(b, int64(len(l.Resources)))
		for _, r := range l.Resources {
			b = str(b, r)
		}
	}
	b = append(b, 0)
	b = str(b, l.ServiceName)
	if len(l.Enrichments) > 0 {
		b = long(b, int64(len(l.Enrichments)))
		for i := range l.Enrichments {
			en := &l.Enrichments[i]
			b = strMap(b, en.Data)
			b = str(b, en.Name)
			b = str(b, en.Provider)
			b = str(b, en.Type)
			b = str(b, en.Value)
		}
	}
	b = append(b, 0)
	if l.ReadOnly {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = str(b, l.RawLog)
	b = str(b, l.EventType)
	b = str(b, l.ActorType)
	b = str(b, l.ActorIP)
	b = str(b, l.ActorUserID)
	b = str(b, l.ActorUserEmail)
	b = str(b, l.APIKeyID)
	b = str(b, l.APIKeyType)
	b = str(b, l.ServiceAccountID)
	b = str(b, l.ProjectID)
	b = str(b, l.ProjectName)
	return b
}

func long(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64((v<<1)^(v>>63)))
}

func str(b []byte, s string) []byte {
	b = long(b, int64(len(s)))
	return append(b, s...)
}

func double(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// strMap writes one block with every entry (in map order, which Avro
// allows), then the end marker.
func strMap(b []byte, m map[string]string) []byte {
	if len(m) > 0 {
		b = long(b, int64(len(m)))
		for k, v := range m {
			b = str(b, k)
			b = str(b, v)
		}
	}
	return append(b, 0)
}
