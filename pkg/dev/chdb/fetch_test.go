package chdb

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
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTarball builds an npm-style .tgz holding package/libchdb.so.
func fakeTarball(t *testing.T, lib []byte) (tgz []byte, integrity string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"package/package.json", []byte(`{}`)}, {"package/libchdb.so", lib}} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	sum := sha512.Sum512(buf.Bytes())
	return buf.Bytes(), "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

type tarballServer struct {
	*httptest.Server
	requests    atomic.Int32
	rangeReqs   atomic.Int32
	ignoreRange bool
}

func newTarballServer(t *testing.T, body []byte, ignoreRange bool) *tarballServer {
	s := &tarballServer{ignoreRange: ignoreRange}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Header.Get("Range") != "" {
			s.rangeReqs.Add(1)
			if s.ignoreRange {
				r.Header.Del("Range")
			}
		}
		http.ServeContent(w, r, "x.tgz", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func randomLib(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestFetch(t *testing.T) {
	lib := randomLib(300_000)
	tgz, integrity := fakeTarball(t, lib)

	tests := []struct {
		name        string
		partial     []byte // pre-existing .part content
		ignoreRange bool
		integrity   string
		wantErr     error
		wantRanges  int32
		wantReqs    int32
	}{
		{name: "fresh", integrity: integrity, wantReqs: 1},
		{name: "resume", partial: tgz[:len(tgz)/2], integrity: integrity, wantRanges: 1, wantReqs: 1},
		{name: "resume ignored by server restarts", partial: tgz[:len(tgz)/2], ignoreRange: true, integrity: integrity, wantRanges: 1, wantReqs: 1},
		{name: "complete part", partial: tgz, integrity: integrity, wantRanges: 1, wantReqs: 1},
		{name: "corrupt part restarts", partial: bytes.Repeat([]byte{'x'}, len(tgz)/2), integrity: integrity, wantRanges: 1, wantReqs: 2},
		{name: "integrity mismatch", integrity: "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64)), wantErr: ErrIntegrity, wantReqs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTarballServer(t, tgz, tc.ignoreRange)
			dir := t.TempDir()
			u := srv.URL + "/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-1.0.0.tgz"
			part := filepath.Join(dir, "lib-linux-x64-gnu-1.0.0.tgz.part")
			if tc.partial != nil {
				require.NoError(t, os.WriteFile(part, tc.partial, 0o644))
			}
			var progress bytes.Buffer
			f := Fetcher{URL: u, Integrity: tc.integrity, Dir: dir, Progress: &progress}
			got, err := f.Fetch(context.Background())
			assert.Equal(t, tc.wantReqs, srv.requests.Load(), "requests")
			assert.Equal(t, tc.wantRanges, srv.rangeReqs.Load(), "range requests")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.NoFileExists(t, filepath.Join(dir, "libchdb.so"))
				assert.NoFileExists(t, part, "a download that fails verification is removed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(dir, "libchdb.so"), got)
			data, err := os.ReadFile(got)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(lib, data), "extracted library differs")
			assert.Contains(t, progress.String(), "ready at")
			assertOnlyLib(t, dir)

			// Cached: no further request.
			_, err = f.Fetch(context.Background())
			require.NoError(t, err)
			assert.Equal(t, tc.wantReqs, srv.requests.Load())
		})
	}
}

// assertOnlyLib checks that no temp or partial files are left behind.
func assertOnlyLib(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{".lock", "libchdb.so"}, names)
}

// TestFetchInterrupted cuts the connection mid-body: the .part stays, no
// library appears, and the next Fetch resumes with a Range request.
func TestFetchInterrupted(t *testing.T) {
	lib := randomLib(200_000)
	tgz, integrity := fakeTarball(t, lib)
	var cut atomic.Bool
	cut.Store(true)
	var ranges atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
		}
		if cut.Load() {
			w.Header().Set("Content-Length", "999999")
			_, _ = w.Write(tgz[:1000])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drop the connection
		}
		http.ServeContent(w, r, "x.tgz", time.Time{}, bytes.NewReader(tgz))
	}))
	defer srv.Close()
	dir := t.TempDir()
	f := Fetcher{URL: srv.URL + "/x.tgz", Integrity: integrity, Dir: dir}
	_, err := f.Fetch(context.Background())
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(dir, "libchdb.so"))
	st, err := os.Stat(filepath.Join(dir, "x.tgz.part"))
	require.NoError(t, err)
	assert.Equal(t, int64(1000), st.Size())

	cut.Store(false)
	_, err = f.Fetch(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int32(1), ranges.Load())
	assertOnlyLib(t, dir)
}

func TestFetchOffline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/x.tgz"
	srv.Close() // nothing listens any more
	f := Fetcher{URL: u, Integrity: Integrity, Dir: t.TempDir()}
	_, err := f.Fetch(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fetching libchdb from 127.0.0.1")
	assert.Contains(t, err.Error(), "are you offline? set CHDB_LIB_PATH to an existing libchdb.so")
}

func TestFetchBadStatus(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	f := Fetcher{URL: srv.URL + "/x.tgz", Integrity: Integrity, Dir: t.TempDir()}
	_, err := f.Fetch(context.Background())
	require.ErrorContains(t, err, "unexpected status 404")
}

func TestLibraryPathEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "libchdb.so")
	t.Setenv(LibPathEnv, p)
	got, ok := LibraryPath()
	assert.Equal(t, p, got)
	assert.False(t, ok)
	_, err := EnsureLibrary(context.Background(), nil)
	require.ErrorContains(t, err, "CHDB_LIB_PATH")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	got, err = EnsureLibrary(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, p, got)
}

func TestCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	d, err := CacheDir()
	require.NoError(t, err)
	assert.Equal(t, "/tmp/xdg/auditpipe/chdb/"+Version, d)
}

func TestPinnedIntegrity(t *testing.T) {
	sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(Integrity, "sha512-"))
	require.NoError(t, err)
	assert.Len(t, sum, sha512.Size)
	assert.True(t, strings.HasSuffix(TarballURL, Version+".tgz"))
}
