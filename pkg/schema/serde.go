package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/schemas"
)

// ErrNotRegistered is wrapped by NewSerde when register is false and the
// subject does not hold the embedded schema: register it at deploy time
// first.
var ErrNotRegistered = errors.New("avro schema not registered")

// RegistrySchema returns the embedded Avro schema as the registry stores it.
func RegistrySchema() sr.Schema {
	return sr.Schema{Schema: schemas.AvroSchema, Type: sr.TypeAvro}
}

// NewSerde returns an sr.Serde that encodes AuditLog values (not pointers)
// to the Confluent wire format (magic byte 0, 4-byte big-endian schema id,
// Avro body) and decodes records carrying exactly that schema id, together
// with the id.
//
// With register true it makes sure the subject's compatibility is BACKWARD
// or stricter (setting BACKWARD when it is weaker or unset) and registers
// the embedded schema, which is idempotent. With register false it only
// looks the schema up under subject and fails with ErrNotRegistered when it
// is missing, so a service whose schema is registered at deploy time fails
// fast. Encoding runs AuditLog.Validate first. To decode records written
// with any schema id, use a Decoder.
//
// NewSerde blocks on registry requests; the returned Serde is safe for
// concurrent use.
func NewSerde(ctx context.Context, cl *sr.Client, subject string, register bool) (*sr.Serde, int, error) {
	sch, err := ParseAvro()
	if err != nil {
		return nil, 0, err
	}
	var id int
	if register {
		if err := ensureBackward(ctx, cl, subject); err != nil {
			return nil, 0, err
		}
		ss, err := cl.CreateSchema(ctx, subject, RegistrySchema())
		if err != nil {
			return nil, 0, fmt.Errorf("registering avro schema under %q: %w", subject, err)
		}
		id = ss.ID
	} else {
		ss, err := cl.LookupSchema(ctx, subject, RegistrySchema())
		if err != nil {
			if isNotFound(err) {
				return nil, 0, fmt.Errorf("%w under subject %q (register it at deploy time or enable registration): %w", ErrNotRegistered, subject, err)
			}
			return nil, 0, fmt.Errorf("looking up avro schema under %q: %w", subject, err)
		}
		id = ss.ID
	}

	serde := sr.NewSerde()
	serde.Register(id, AuditLog{},
		sr.EncodeFn(func(v any) ([]byte, error) {
			l, ok := v.(AuditLog)
			if !ok {
				return nil, fmt.Errorf("encoding %T: want schema.AuditLog", v)
			}
			return MarshalAvro(&l)
		}),
		sr.DecodeFn(func(b []byte, v any) error {
			l, ok := v.(*AuditLog)
			if !ok {
				return fmt.Errorf("decoding into %T: want *schema.AuditLog", v)
			}
			*l = AuditLog{}
			if err := AvroAPI.Unmarshal(sch, b, l); err != nil {
				return fmt.Errorf("%w: decoding avro: %w", ErrMalformed, err)
			}
			return nil
		}),
	)
	return serde, id, nil
}

// ensureBackward sets the subject's compatibility to BACKWARD unless it is
// already BACKWARD or stricter (BACKWARD_TRANSITIVE, FULL, FULL_TRANSITIVE).
// A registry without the config API (404, 405, 501 on reading it) is left
// alone.
func ensureBackward(ctx context.Context, cl *sr.Client, subject string) error {
	res := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if len(res) == 1 && res[0].Err == nil {
		switch res[0].Level {
		case sr.CompatBackward, sr.CompatBackwardTransitive, sr.CompatFull, sr.CompatFullTransitive:
			return nil
		}
	} else if len(res) == 1 && unsupported(res[0].Err) {
		return nil
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackward}, subject)
	if len(set) == 1 && set[0].Err != nil {
		if unsupported(set[0].Err) {
			return nil
		}
		return fmt.Errorf("setting compatibility BACKWARD on %q: %w", subject, set[0].Err)
	}
	return nil
}

func isNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func unsupported(err error) bool {
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch re.StatusCode {
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	case http.StatusNotFound:
		// 40401/40408 mean "no such subject/config", not "no config API".
		return re.ErrorCode == 0 || re.ErrorCode == http.StatusNotFound
	}
	return false
}
