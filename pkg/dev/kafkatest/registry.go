package kafkatest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// FakeSchemaRegistry is an in-process Schema Registry (srfake) on a
// random loopback port that lives until the test ends. It does no real
// compatibility checking: every compatibility check passes.
type FakeSchemaRegistry struct {
	fake *srfake.Registry
}

// NewFakeSchemaRegistry starts a registry and closes it when the test
// ends.
func NewFakeSchemaRegistry(t testing.TB, opts ...srfake.Option) *FakeSchemaRegistry {
	t.Helper()
	r := srfake.New(opts...)
	t.Cleanup(r.Close)
	return &FakeSchemaRegistry{fake: r}
}

// URL returns the registry's base URL (http://127.0.0.1:port).
func (r *FakeSchemaRegistry) URL() string { return r.fake.URL() }

// Fake returns the underlying srfake registry, for SeedSchema,
// RegisterSchema, Intercept (error injection) and Reset.
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
