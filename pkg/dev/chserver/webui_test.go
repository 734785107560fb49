package chserver_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

// TestWebPages: like ClickHouse, the server serves /play and /dashboard,
// read from the engine library, and their scripts from the npm cache; the
// console's CORS preflight is answered.
func TestWebPages(t *testing.T) {
	dir, err := webui.EnsureAssets(context.Background(), os.Stderr)
	require.NoError(t, err, "fetching the pinned scripts from the npm registry")
	srv := startServer(t, chserver.Config{WebAssetsDir: dir})
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]string{
		"/dashboard": "<title>ClickHouse Dashboard</title>", "/play": "<title>ClickHouse Query</title>",
		webui.Assets[0].Served(): "uPlot", webui.Assets[1].Served(): "LZString",
	} {
		code, body := get(path)
		assert.Equal(t, http.StatusOK, code, path)
		assert.True(t, strings.Contains(body, want), "%s holds %s", path, want)
	}
	code, body := get("/nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "/dashboard for charts")

	req, err := http.NewRequest(http.MethodOptions, srv.URL()+"/?query", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
}
