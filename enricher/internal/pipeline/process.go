package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/enricher/internal/geo"
	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Reasons the processor adds to normalize's.
const (
	// ReasonInvalidRecord: the normalized record breaks the table's types.
	ReasonInvalidRecord = "invalid_record"
	// ReasonEncoding: the record could not be Avro-encoded.
	ReasonEncoding = "encoding_failed"
	// ReasonOutputTooLarge: the encoded record exceeds MaxOutputBytes.
	ReasonOutputTooLarge = "output_too_large"
)

// Processor turns one raw record into the wire-format value of its
// enriched record. It is safe for concurrent use when Encode is.
type Processor struct {
	// Geo fills the src* columns and enrichments (from databases or
	// OpenAI's details); nil leaves them empty.
	Geo *geo.Enricher
	// Encode returns the Confluent wire-format bytes of l (the contract
	// of sr.Serde.Encode); it must not retain l.
	Encode func(l *schema.AuditLog) ([]byte, error)
	// Recycle, when set, takes back a value Encode returned once nothing
	// uses it any more (avroenc.Encoder.Release for EncodeBuffer), so that
	// encoding reuses buffers instead of allocating one per record.
	Recycle func([]byte)
	// SourceTags are static tags by source_id.
	SourceTags map[string]map[string]string
	// MaxOutputBytes bounds an encoded value (0: no bound).
	MaxOutputBytes int

	// results recycles normalized records (their maps and slices)
	// between Process calls.
	results sync.Pool
}

// Output is what Process makes of one raw record.
type Output struct {
	// Value is the encoded enriched value.
	Value []byte
	// Unmapped is the event type when normalize has no category for it
	// (category "other": the record was normalized by the generic path
	// only), else "".
	Unmapped string
}

// metaHeaders are the headers normalize.ParseMeta reads.
var metaHeaders = [...]string{contract.HeaderWorkspaceID, contract.HeaderSourceID, contract.HeaderSourceType,
	contract.HeaderSourceTTL, contract.HeaderReceivedAt, contract.HeaderTags}

// Process returns the encoded enriched value of r (and whether its type
// is unmapped), or an error for which normalize.ReasonOf gives the
// dead-letter reason. Pass the value to Done once it is no longer used
// (after its produce completed). Every error is
// permanent: the same record always fails the same way. r's value and
// headers are read in place (not copied), so they must not change while
// Process runs; the returned bytes share nothing with r.
func (p *Processor) Process(r *kgo.Record) (Output, error) {
	meta, err := p.meta(r)
	if err != nil {
		return Output{}, err
	}
	res, _ := p.results.Get().(*normalize.Result)
	if res == nil {
		res = new(normalize.Result)
	}
	defer p.results.Put(res)
	if err := normalize.NormalizeShared(res, r.Value, meta); err != nil {
		return Output{}, err
	}
	if p.Geo != nil {
		p.Geo.Apply(&res.Log, res.SrcIP, res.Details)
	}
	return p.encode(res)
}

// meta parses r's metadata headers (the first of each key counts) with
// the source's static tags; a record without a timestamp is taken as
// received now. The strings share r's header bytes: use them only while
// r is processed.
func (p *Processor) meta(r *kgo.Record) (normalize.Meta, error) {
	// The header values are read in place: they are only used until the
	// record is encoded, and a consumed record's bytes never change.
	var hv [len(metaHeaders)]string
	var has [len(metaHeaders)]bool
	for _, h := range r.Headers {
		for i, k := range metaHeaders {
			if h.Key == k && !has[i] {
				hv[i], has[i] = unsafe.String(unsafe.SliceData(h.Value), len(h.Value)), true
				break
			}
		}
	}
	get := func(key string) (string, bool) {
		for i, k := range metaHeaders {
			if k == key {
				return hv[i], has[i]
			}
		}
		return "", false
	}
	src, _ := get(contract.HeaderSourceID)
	ts := r.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return normalize.ParseMeta(get, ts, p.SourceTags[src])
}

// encode returns the encoded value of res's record, or a
// normalize.Error: ReasonInvalidRecord or ReasonEncoding when Encode
// fails, ReasonOutputTooLarge (the value already handed back to Done)
// when it exceeds MaxOutputBytes. The returned Output shares nothing with
// res.
func (p *Processor) encode(res *normalize.Result) (Output, error) {
	b, err := p.Encode(&res.Log)
	if err != nil {
		if errors.Is(err, schema.ErrInvalidRecord) {
			return Output{}, &normalize.Error{Reason: ReasonInvalidRecord, Err: err}
		}
		return Output{}, &normalize.Error{Reason: ReasonEncoding, Err: err}
	}
	if p.MaxOutputBytes > 0 && len(b) > p.MaxOutputBytes {
		n := len(b)
		p.Done(b)
		return Output{}, &normalize.Error{Reason: ReasonOutputTooLarge, Err: fmt.Errorf("encoded record is %d bytes, limit %d", n, p.MaxOutputBytes)}
	}
	out := Output{Value: b}
	if res.Log.Tags["category"] == normalize.CategoryOther {
		// A copy: the name may share the reader's buffers (rare, so the
		// allocation does not matter).
		out.Unmapped = strings.Clone(res.Log.EventName)
	}
	return out, nil
}

// Done hands a value returned by Process back for reuse (see Recycle);
// the value must not be used afterwards. Without Recycle it does nothing.
// It is safe for concurrent use when Recycle is.
func (p *Processor) Done(b []byte) {
	if p.Recycle != nil && b != nil {
		p.Recycle(b)
	}
}
