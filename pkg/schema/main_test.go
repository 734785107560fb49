package schema_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newRegistry starts an in-process registry and a client for it whose idle
// connections are closed on cleanup.
func newRegistry(tb testing.TB) (*srfake.Registry, *sr.Client) {
	tb.Helper()
	reg := srfake.New()
	tr := &http.Transport{}
	cl, err := sr.NewClient(sr.URLs(reg.URL()), sr.HTTPClient(&http.Client{Transport: tr}))
	require.NoError(tb, err)
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		reg.Close()
	})
	return reg, cl
}
