package kafkatest

import (
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// FakeSchemaRegistry is an in-process Schema Registry on a random loopback
// port that lives until the test ends: franz-go's srfake behind
// EnforceCompatibility, so that registrations are checked against the
// subject's compatibility level as Confluent's registry checks them.
type FakeSchemaRegistry struct {
	fake *srfake.Registry
	srv  *httptest.Server
}

// NewFakeSchemaRegistry starts a registry (srfake configured by opts,
// compatibility enforced) and closes it when the test ends.
func NewFakeSchemaRegistry(t testing.TB, opts ...srfake.Option) *FakeSchemaRegistry {
	t.Helper()
	r := srfake.NewRegistry(opts...)
	srv := httptest.NewServer(EnforceCompatibility(r))
	t.Cleanup(srv.Close)
	return &FakeSchemaRegistry{fake: r, srv: srv}
}

// URL returns the registry's base URL (http://127.0.0.1:port).
func (r *FakeSchemaRegistry) URL() string { return r.srv.URL }

// Fake returns the underlying srfake registry, for SeedSchema,
// RegisterSchema, SetCompat, Intercept (error injection) and Reset. What
// is done through it in Go bypasses the compatibility check.
func (r *FakeSchemaRegistry) Fake() *srfake.Registry { return r.fake }

// Client returns a pkg/sr client for the registry, configured further by
// opts. It fails the test on a bad option.
func (r *FakeSchemaRegistry) Client(t testing.TB, opts ...sr.ClientOpt) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(r.URL())}, opts...)...)
	if err != nil {
		t.Fatalf("creating schema registry client: %v", err)
	}
	return cl
}
