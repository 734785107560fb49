package chdb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/auditpipe/auditpipe/pkg/dev/npmfetch"
)

// The pinned engine release. Integrity is the npm registry's dist.integrity for
// this exact version (https://registry.npmjs.org/@chdb%2flib-linux-x64-gnu).
const (
	Version     = "26.7.3-stable.1"
	PackageName = "@chdb/lib-linux-x64-gnu"
	TarballURL  = "https://registry.npmjs.org/@chdb/lib-linux-x64-gnu/-/lib-linux-x64-gnu-26.7.3-stable.1.tgz"
	Integrity   = "sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw=="

	// LibPathEnv names the environment variable that overrides the library
	// location (no download happens when it is set).
	LibPathEnv = "CHDB_LIB_PATH"

	libName     = "libchdb.so"
	tarballName = "package/libchdb.so"
)

// ErrIntegrity reports a downloaded tarball whose sha512 differs from the
// pinned integrity.
var ErrIntegrity = npmfetch.ErrIntegrity

// CacheDir returns the per-user directory that holds libchdb.so for
// [Version]: $XDG_CACHE_HOME (or os.UserCacheDir) + /auditpipe/chdb/<version>.
func CacheDir() (string, error) { return npmfetch.CacheDir("chdb", Version) }

// LibraryPath returns where the library is expected ($CHDB_LIB_PATH, else the
// cache) and whether a file exists there. It never downloads.
func LibraryPath() (string, bool) {
	if p := os.Getenv(LibPathEnv); p != "" {
		return p, npmfetch.Exists(p)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", false
	}
	p := filepath.Join(dir, libName)
	return p, npmfetch.Exists(p)
}

// EnsureLibrary returns the path of libchdb.so, downloading and verifying the
// pinned npm tarball into [CacheDir] when it is not there yet. With
// $CHDB_LIB_PATH set it only checks that file. Progress lines go to progress
// (may be nil). Safe for concurrent use by several processes: a file lock
// serializes downloads.
func EnsureLibrary(ctx context.Context, progress io.Writer) (string, error) {
	if p := os.Getenv(LibPathEnv); p != "" {
		if !npmfetch.Exists(p) {
			return "", fmt.Errorf("%s=%s: no such file", LibPathEnv, p)
		}
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	f := Fetcher{URL: TarballURL, Integrity: Integrity, Dir: dir, Progress: progress}
	return f.Fetch(ctx)
}

// Fetcher downloads an npm tarball, verifies it and extracts libchdb.so into
// Dir. The zero Client means http.DefaultClient.
type Fetcher struct {
	URL       string       // tarball URL
	Integrity string       // npm "sha512-<base64>" integrity
	Dir       string       // destination directory; libchdb.so lands here
	Client    *http.Client // nil means http.DefaultClient
	Progress  io.Writer    // progress lines; nil for none
}

// Fetch returns Dir/libchdb.so, downloading it first if needed. An
// interrupted download leaves Dir/<tarball>.part, which the next Fetch
// resumes with an HTTP Range request (or restarts when the server ignores
// ranges or the resumed file fails verification). The library appears
// atomically (temp file + rename), so a reader never sees a partial file.
func (f *Fetcher) Fetch(ctx context.Context) (string, error) {
	dst := filepath.Join(f.Dir, libName)
	nf := npmfetch.Fetcher{Dir: f.Dir, Client: f.Client, Progress: f.Progress,
		OfflineHint: "set " + LibPathEnv + " to an existing " + libName}
	t := npmfetch.Tarball{Name: "libchdb", URL: f.URL, Integrity: f.Integrity}
	if err := nf.Extract(ctx, t, tarballName, dst, 0o755); err != nil {
		return "", err
	}
	return dst, nil
}
