package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/schemas"
)

// ErrNotRegistered is wrapped by NewSerde when register is false and the
// subject does not hold the embedded schema: register it at deploy time
// first.
var ErrNotRegistered = errors.New("avro schema not registered")

// ErrSchemaRejected is wrapped by NewSerde when the Schema Registry will
// not work with the embedded schema: it refused to register it (HTTP 409,
// incompatible under the subject's compatibility level; HTTP 422, invalid),
// or the subject's newest version is newer than the embedded schema and
// cannot read records written with it (this release is older than the
// deployed schema). Retrying does not help; the message says what to do.
var ErrSchemaRejected = errors.New("the schema registry rejects this release's avro schema")

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
// fast. Either way it then fails with ErrSchemaRejected when the subject's
// newest version cannot read records written with the embedded schema;
// a refused registration fails with ErrSchemaRejected too. Encoding runs
// AuditLog.Validate first. To decode records written with any schema id,
// use a Decoder.
//
// NewSerde blocks on registry requests; the returned Serde is safe for
// concurrent use.
func NewSerde(ctx context.Context, cl *sr.Client, subject string, register bool) (*sr.Serde, int, error) {
	sch, err := ParseAvro()
	if err != nil {
		return nil, 0, err
	}
	ours, err := registeredSchema(ctx, cl, subject, register)
	if err != nil {
		return nil, 0, err
	}
	if err := checkNewest(ctx, cl, subject, ours, sch); err != nil {
		return nil, 0, err
	}
	id := ours.ID

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

// registeredSchema registers the embedded schema under subject (register)
// or looks it up, and returns its id and version there.
func registeredSchema(ctx context.Context, cl *sr.Client, subject string, register bool) (sr.SubjectSchema, error) {
	if !register {
		ss, err := cl.LookupSchema(ctx, subject, RegistrySchema())
		switch {
		case isNotFound(err):
			return ss, fmt.Errorf("%w under subject %q (register it at deploy time or enable registration): %w", ErrNotRegistered, subject, err)
		case err != nil:
			return ss, fmt.Errorf("looking up avro schema under %q: %w", subject, err)
		}
		return ss, nil
	}
	if err := ensureBackward(ctx, cl, subject); err != nil {
		return sr.SubjectSchema{}, err
	}
	ss, err := cl.CreateSchema(ctx, subject, RegistrySchema())
	var re *sr.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusConflict:
		return ss, fmt.Errorf("%w: the registry refused to register schema v%d under subject %q as incompatible with the versions its compatibility level checks (%s). "+
			"This release's schema cannot follow what the subject holds: deploy the release whose schema the subject's newest version is, "+
			"or, if that version was registered by mistake, delete it from the subject deliberately; do not lower the subject's compatibility level to get past this",
			ErrSchemaRejected, schemas.AvroVersion, subject, re.Message)
	case errors.As(err, &re) && re.StatusCode == http.StatusUnprocessableEntity:
		return ss, fmt.Errorf("%w: the registry finds schema v%d invalid under subject %q (%s); is it a Confluent-compatible registry?", ErrSchemaRejected, schemas.AvroVersion, subject, re.Message)
	case err != nil:
		return ss, fmt.Errorf("registering avro schema under %q: %w", subject, err)
	}
	return ss, nil
}

// checkNewest fails with ErrSchemaRejected when the subject's newest
// version is newer than ours (writer is its parsed schema) and cannot
// read records written with ours:
// consumers that upgraded to it would fail on them. A newer version that
// can read them (a rollback over a compatible change) is fine.
func checkNewest(ctx context.Context, cl *sr.Client, subject string, ours sr.SubjectSchema, writer avro.Schema) error {
	latest, err := cl.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		return fmt.Errorf("reading the newest version of subject %q: %w", subject, err)
	}
	if latest.ID == ours.ID || latest.Version <= ours.Version || latest.Type != sr.TypeAvro || len(latest.References) > 0 {
		return nil
	}
	reader, err := avro.ParseWithCache(latest.Schema.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return fmt.Errorf("%w: the newest version %d of subject %q (schema id %d) does not parse: %w", ErrSchemaRejected, latest.Version, subject, latest.ID, err)
	}
	if err := avro.NewSchemaCompatibility().Compatible(reader, writer); err != nil {
		return fmt.Errorf("%w: subject %q holds version %d (schema id %d), newer than this release's schema v%d (version %d, id %d), and it cannot read records written with v%d: %v. "+
			"Consumers that upgraded to it would fail on this service's records: this is an older release than the deployed schema; deploy the release that registered version %d",
			ErrSchemaRejected, subject, latest.Version, latest.ID, schemas.AvroVersion, ours.Version, ours.ID, schemas.AvroVersion, err, latest.Version)
	}
	return nil
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
