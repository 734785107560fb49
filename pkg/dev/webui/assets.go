package webui

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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
var ErrIntegrity = errors.New("integrity mismatch")

// CacheDir returns $XDG_CACHE_HOME (or os.UserCacheDir) + /auditpipe/npm.
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("locating user cache dir: %w", err)
		}
		base = d
	}
	return filepath.Join(base, "auditpipe", "npm"), nil
}

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
// downloads the tarball (at most 16 MiB), checks its sha512 against
// a.Integrity and extracts the file through a temp file and a rename.
func (f *Fetcher) Fetch(ctx context.Context, a Asset) error {
	dst := AssetPath(f.Dir, a)
	if fileExists(dst) {
		return nil
	}
	want, err := parseIntegrity(a.Integrity)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("creating cache dir: %w", err)
	}
	unlock, err := lockDir(f.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	if fileExists(dst) { // another process finished while we waited
		return nil
	}
	start := time.Now()
	f.printf("webui: downloading %s\n", a.Tarball)
	body, err := f.download(ctx, a)
	if err != nil {
		return err
	}
	if sum := sha512.Sum512(body); string(sum[:]) != string(want) {
		return fmt.Errorf("verifying %s against %s: %w", a.Tarball, a.Integrity, ErrIntegrity)
	}
	if err := extract(body, a.File, dst); err != nil {
		return fmt.Errorf("extracting %s from %s: %w", a.File, a.Tarball, err)
	}
	f.printf("webui: %s@%s verified (%.1f KB in %s), ready at %s\n", a.Package, a.Version,
		float64(len(body))/1024, time.Since(start).Round(10*time.Millisecond), dst)
	return nil
}

const maxTarball = 16 << 20

func (f *Fetcher) download(ctx context.Context, a Asset) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Tarball, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, offlineErr(a, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: unexpected status %s", a.Tarball, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTarball+1))
	if err != nil {
		return nil, offlineErr(a, err)
	}
	if len(body) > maxTarball {
		return nil, fmt.Errorf("fetching %s: larger than %d bytes", a.Tarball, maxTarball)
	}
	return body, nil
}

func offlineErr(a Asset, err error) error {
	return fmt.Errorf("fetching %s@%s from the npm registry: %w (are you offline? run `make deps` once online)", a.Package, a.Version, err)
}

func (f *Fetcher) printf(format string, args ...any) {
	if f.Progress != nil {
		fmt.Fprintf(f.Progress, format, args...)
	}
}

// extract writes the tarball member name to dst atomically.
func extract(tgz []byte, name, dst string) error {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s not found in the tarball", name)
		}
		if err != nil {
			return err
		}
		if hdr.Name != name || hdr.Typeflag != tar.TypeReg {
			continue
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // no-op after the rename
		_, err = io.Copy(tmp, io.LimitReader(tr, maxTarball))
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return os.Rename(tmp.Name(), dst)
	}
}

// lockDir takes an exclusive flock on dir/.lock; the returned func releases it.
func lockDir(dir string) (func(), error) {
	lf, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		lf.Close()
		return nil, fmt.Errorf("locking cache dir: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
		lf.Close()
	}, nil
}

func parseIntegrity(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "sha512-")
	if !ok {
		return nil, fmt.Errorf("parsing integrity %q: only sha512 is supported", s)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha512.Size {
		return nil, fmt.Errorf("parsing integrity %q: bad sha512 digest", s)
	}
	return sum, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
