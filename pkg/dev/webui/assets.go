package webui

import (
	"context"
	"io"
	"net/http"
	"path"
	"path/filepath"

	"github.com/auditpipe/auditpipe/pkg/dev/npmfetch"
)

// Asset is one file of a pinned npm package that the pages load from a CDN.
type Asset struct {
	Package   string // npm package name
	Version   string
	Tarball   string // the registry's dist.tarball
	Integrity string // the registry's dist.integrity (sha512)
	File      string // path inside the tarball, under package/
	CDN       string // the address the pages load it from
}

// Served is the local path the asset is served at: /_assets/<package>@<version>/<base name>.
func (a Asset) Served() string {
	return "/_assets/" + a.Package + "@" + a.Version + "/" + path.Base(a.File)
}

func (a Asset) cacheName() string { return a.Package + "-" + a.Version }

// Assets are the scripts of ClickHouse 26.7's /dashboard and /play pages.
// The integrities are the npm registry's dist.integrity of these versions.
var Assets = []Asset{
	{
		Package: "uplot", Version: "1.6.21",
		Tarball:   "https://registry.npmjs.org/uplot/-/uplot-1.6.21.tgz",
		Integrity: "sha512-Xd7m2GSHyzhz+mP9CzYTalzp9WDlHzTorNY1yDvg6E+wiCwMIIY+MLfNveObyp3qVMH4kP8mOhRX4k4S9YLHRQ==",
		File:      "package/dist/uPlot.iife.min.js",
		CDN:       "https://cdn.jsdelivr.net/npm/uplot@1.6.21/dist/uPlot.iife.min.js",
	},
	{
		Package: "lz-string", Version: "1.5.0",
		Tarball:   "https://registry.npmjs.org/lz-string/-/lz-string-1.5.0.tgz",
		Integrity: "sha512-h5bgJWpxJNswbU7qCrV0tIKQCaS3blPDrqKWx+QxzuzL1zGUzij9XCWLrSLsJPu5t+eWA/ycetzYAO5IOMcWAQ==",
		File:      "package/libs/lz-string.min.js",
		CDN:       "https://cdn.jsdelivr.net/npm/lz-string@1.5.0/libs/lz-string.min.js",
	},
}

// ErrIntegrity reports a downloaded tarball whose sha512 differs from the
// pinned integrity.
var ErrIntegrity = npmfetch.ErrIntegrity

// CacheDir returns $XDG_CACHE_HOME (or os.UserCacheDir) + /auditpipe/npm.
func CacheDir() (string, error) { return npmfetch.CacheDir("npm") }

// AssetPath is where asset a is cached under dir.
func AssetPath(dir string, a Asset) string {
	return filepath.Join(dir, a.cacheName(), path.Base(a.File))
}

// EnsureAssets makes sure every asset is in [CacheDir], downloading and
// verifying the missing ones, and returns the directory. Progress lines go
// to progress (may be nil). Safe for concurrent use by several processes:
// a file lock serializes downloads.
func EnsureAssets(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	f := Fetcher{Dir: dir, Progress: progress}
	for _, a := range Assets {
		if err := f.Fetch(ctx, a); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// Fetcher downloads npm tarballs into Dir. The zero Client means
// http.DefaultClient.
type Fetcher struct {
	Dir      string
	Client   *http.Client
	Progress io.Writer
}

// Fetch puts a's file at AssetPath(Dir, a) unless it is there already: it
// downloads the tarball, checks its sha512 against a.Integrity and extracts
// the file through a temp file and a rename.
func (f *Fetcher) Fetch(ctx context.Context, a Asset) error {
	nf := npmfetch.Fetcher{Dir: f.Dir, Client: f.Client, Progress: f.Progress, OfflineHint: "run `make deps` once online"}
	t := npmfetch.Tarball{Name: a.Package + "@" + a.Version, URL: a.Tarball, Integrity: a.Integrity}
	return nf.Extract(ctx, t, a.File, AssetPath(f.Dir, a), 0o644)
}
