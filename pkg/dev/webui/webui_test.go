package webui_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
	"github.com/auditpipe/auditpipe/pkg/dev/webui"
)

// tarball returns a gzipped npm-style tarball holding files and its integrity.
func tarball(t *testing.T, files map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	sum := sha512.Sum512(buf.Bytes())
	return buf.Bytes(), "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestFetcher(t *testing.T) {
	tgz, integrity := tarball(t, map[string]string{"package/README.md": "x", "package/dist/lib.min.js": "console.log(1)"})
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		_, _ = w.Write(tgz)
	}))
	defer srv.Close()
	a := webui.Asset{Package: "lib", Version: "1.0.0", Tarball: srv.URL + "/lib-1.0.0.tgz", Integrity: integrity, File: "package/dist/lib.min.js"}
	tests := []struct {
		name    string
		mutate  func(a *webui.Asset)
		wantErr string
	}{
		{name: "verified and extracted"},
		{name: "integrity mismatch", mutate: func(a *webui.Asset) { a.Integrity = "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64)) }, wantErr: "integrity mismatch"},
		{name: "missing member", mutate: func(a *webui.Asset) { a.File = "package/nope.js" }, wantErr: "package/nope.js not found in the tarball"},
		{name: "bad integrity", mutate: func(a *webui.Asset) { a.Integrity = "sha1-abc" }, wantErr: "only sha512"},
		{name: "offline", mutate: func(a *webui.Asset) { a.Tarball = "http://127.0.0.1:1/x.tgz" }, wantErr: "are you offline?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := a
			if tt.mutate != nil {
				tt.mutate(&a)
			}
			var progress bytes.Buffer
			f := webui.Fetcher{Dir: t.TempDir(), Progress: &progress}
			err := f.Fetch(context.Background(), a)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NoFileExists(t, webui.AssetPath(f.Dir, a), "nothing unverified is left in the cache")
				return
			}
			require.NoError(t, err)
			b, err := os.ReadFile(webui.AssetPath(f.Dir, a))
			require.NoError(t, err)
			assert.Equal(t, "console.log(1)", string(b))
			assert.Contains(t, progress.String(), "lib@1.0.0 verified")
			before := hits
			require.NoError(t, f.Fetch(context.Background(), a))
			assert.Equal(t, before, hits, "a cached asset is not downloaded again")
		})
	}
}

func TestPagesFromALibrary(t *testing.T) {
	dash := "<!DOCTYPE html>\n<html><head><title>ClickHouse Dashboard</title>" +
		`<script src="https://cdn.jsdelivr.net/npm/uplot@1.6.21/dist/uPlot.iife.min.js"></script>` +
		`<script src="https://cdn.jsdelivr.net/npm/lz-string@1.5.0/libs/lz-string.min.js"></script></head></html>` + "\n"
	play := "<!DOCTYPE html><html><head><title>ClickHouse Query</title></head></html>"
	lib := filepath.Join(t.TempDir(), "libfake.so")
	require.NoError(t, os.WriteFile(lib, []byte("\x7fELF\x01\x00"+dash+"\x00\x00junk\x00"+play+"\x00tail"), 0o644))
	pages, err := webui.Pages(lib)
	require.NoError(t, err)
	assert.Equal(t, play, string(pages["/play"]))
	want := strings.NewReplacer(webui.Assets[0].CDN, "/_assets/uplot@1.6.21/uPlot.iife.min.js", webui.Assets[1].CDN, "/_assets/lz-string@1.5.0/lz-string.min.js").Replace(strings.TrimSpace(dash))
	assert.Equal(t, want, string(pages["/dashboard"]))

	require.NoError(t, os.WriteFile(lib, []byte("\x00<html><title>ClickHouse Dashboard</title>\x00"), 0o644))
	_, err = webui.Pages(lib)
	require.ErrorContains(t, err, "page /dashboard (<title>ClickHouse Dashboard</title>)")
	require.ErrorContains(t, err, "not a whole HTML document")
	require.ErrorContains(t, err, "page /play (<title>ClickHouse Query</title>)")
	require.ErrorContains(t, err, "not found")
}

// TestPagesFromLibchdb reads the pages from the real engine library: they
// must be there, whole, and load nothing from the CDN afterwards.
func TestPagesFromLibchdb(t *testing.T) {
	lib, ok := chdb.LibraryPath()
	if !ok {
		var err error
		lib, err = chdb.EnsureLibrary(context.Background(), os.Stderr)
		require.NoError(t, err, "fetching libchdb for the test")
	}
	pages, err := webui.Pages(lib)
	require.NoError(t, err)
	for path, page := range pages {
		for _, load := range []string{`src="https://`, `_loadJS('https://`} {
			assert.False(t, strings.Contains(string(page), load), "%s still loads %s…", path, load)
		}
	}
	for _, a := range webui.Assets {
		assert.True(t, strings.Contains(string(pages["/dashboard"]), `src="`+a.Served()+`"`), "/dashboard loads %s", a.Served())
	}
	assert.True(t, strings.Contains(string(pages["/play"]), webui.Assets[0].Served()), "the console draws charts with uPlot too")
}

func TestHandlerServesPagesAndAssets(t *testing.T) {
	dir, err := webui.EnsureAssets(context.Background(), os.Stderr)
	require.NoError(t, err, "fetching the pinned scripts from the npm registry")
	lib := filepath.Join(t.TempDir(), "libfake.so")
	require.NoError(t, os.WriteFile(lib, []byte("\x00<!DOCTYPE html><title>ClickHouse Dashboard</title></html>\x00<!doctype html><title>ClickHouse Query</title></html>\x00"), 0o644))
	srv := httptest.NewServer(webui.NewHandler(lib, dir))
	defer srv.Close()
	for path, want := range map[string]string{
		"/dashboard": "ClickHouse Dashboard", "/play": "ClickHouse Query",
		webui.Assets[0].Served(): "uPlot", webui.Assets[1].Served(): "LZString",
	} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, b.String(), want, path)
		assert.True(t, webui.Handles(path), path)
	}
	resp, err := http.Post(srv.URL+"/play", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.False(t, webui.Handles("/"))
}
