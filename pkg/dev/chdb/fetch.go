package chdb

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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
var ErrIntegrity = errors.New("integrity mismatch")

// CacheDir returns the per-user directory that holds libchdb.so for
// [Version]: $XDG_CACHE_HOME (or os.UserCacheDir) + /auditpipe/chdb/<version>.
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("locating user cache dir: %w", err)
		}
		base = d
	}
	return filepath.Join(base, "auditpipe", "chdb", Version), nil
}

// LibraryPath returns where the library is expected ($CHDB_LIB_PATH, else the
// cache) and whether a file exists there. It never downloads.
func LibraryPath() (string, bool) {
	if p := os.Getenv(LibPathEnv); p != "" {
		return p, fileExists(p)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", false
	}
	p := filepath.Join(dir, libName)
	return p, fileExists(p)
}

// EnsureLibrary returns the path of libchdb.so, downloading and verifying the
// pinned npm tarball into [CacheDir] when it is not there yet. With
// $CHDB_LIB_PATH set it only checks that file. Progress lines go to progress
// (may be nil). Safe for concurrent use by several processes: a file lock
// serializes downloads.
func EnsureLibrary(ctx context.Context, progress io.Writer) (string, error) {
	if p := os.Getenv(LibPathEnv); p != "" {
		if !fileExists(p) {
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
	if fileExists(dst) {
		return dst, nil
	}
	want, err := parseIntegrity(f.Integrity)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", fmt.Errorf("creating cache dir: %w", err)
	}
	unlock, err := lockDir(f.Dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	if fileExists(dst) { // another process finished while we waited
		return dst, nil
	}
	part := filepath.Join(f.Dir, tarballBase(f.URL)+".part")
	resumed, err := f.download(ctx, part, want)
	if errors.Is(err, ErrIntegrity) && resumed {
		f.printf("libchdb: resumed download failed verification, restarting from scratch\n")
		if rerr := os.Remove(part); rerr != nil {
			return "", fmt.Errorf("removing corrupt download: %w", rerr)
		}
		_, err = f.download(ctx, part, want)
	}
	if err != nil {
		if errors.Is(err, ErrIntegrity) {
			_ = os.Remove(part)
		}
		return "", err
	}
	if err := extractLib(part, dst); err != nil {
		return "", err
	}
	if err := os.Remove(part); err != nil {
		return "", fmt.Errorf("removing tarball: %w", err)
	}
	f.printf("libchdb: ready at %s\n", dst)
	return dst, nil
}

func (f *Fetcher) printf(format string, args ...any) {
	if f.Progress != nil {
		fmt.Fprintf(f.Progress, format, args...)
	}
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

// download completes part and verifies its sha512 against want. It reports
// whether it resumed an earlier partial file.
func (f *Fetcher) download(ctx context.Context, part string, want []byte) (resumed bool, err error) {
	h := sha512.New()
	var have int64
	if st, err := os.Stat(part); err == nil && st.Size() > 0 {
		if err := hashFile(h, part); err != nil {
			return false, err
		}
		have = st.Size()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return false, fmt.Errorf("building request: %w", err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return false, f.offlineErr(err)
	}
	defer resp.Body.Close()

	flags := os.O_WRONLY | os.O_CREATE
	total := resp.ContentLength
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0 && contentRangeStart(resp.Header.Get("Content-Range")) == have:
		resumed = true
		flags |= os.O_APPEND
		if total >= 0 {
			total += have
		}
		f.printf("libchdb: resuming download at %.1f MB\n", mb(have))
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The part file may already be complete; let verification decide.
		if sumEqual(h.Sum(nil), want) {
			return true, nil
		}
		return true, fmt.Errorf("verifying %s: %w", part, ErrIntegrity)
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
		h.Reset()
		have = 0
	default:
		return false, fmt.Errorf("fetching libchdb from %s: unexpected status %s", hostOf(f.URL), resp.Status)
	}
	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return resumed, fmt.Errorf("opening download file: %w", err)
	}
	pw := &progressWriter{w: f.Progress, done: have, total: total, start: time.Now()}
	pw.announce(f.URL)
	_, cerr := io.Copy(io.MultiWriter(out, h, pw), resp.Body)
	serr := out.Sync()
	if err := errors.Join(cerr, serr, out.Close()); err != nil {
		if cerr != nil {
			return resumed, f.offlineErr(cerr)
		}
		return resumed, fmt.Errorf("writing download file: %w", err)
	}
	pw.finish()
	if !sumEqual(h.Sum(nil), want) {
		return resumed, fmt.Errorf("verifying %s against %s: %w", tarballBase(f.URL), f.Integrity, ErrIntegrity)
	}
	return resumed, nil
}

func (f *Fetcher) offlineErr(err error) error {
	return fmt.Errorf("fetching libchdb from %s: %w (are you offline? set %s to an existing libchdb.so)", hostOf(f.URL), err, LibPathEnv)
}

// extractLib copies package/libchdb.so out of the gzipped tarball at src into
// dst through a temp file in the same directory and a rename.
func extractLib(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening tarball: %w", err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("reading tarball: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("reading tarball: %s not found", tarballName)
		}
		if err != nil {
			return fmt.Errorf("reading tarball: %w", err)
		}
		if hdr.Name != tarballName || hdr.Typeflag != tar.TypeReg {
			continue
		}
		return writeAtomic(dst, tr)
	}
}

func writeAtomic(dst string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extracting %s: %w", filepath.Base(dst), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("installing %s: %w", filepath.Base(dst), err)
	}
	return nil
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

func hashFile(h hash.Hash, path string) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading partial download: %w", err)
	}
	defer in.Close()
	if _, err := io.Copy(h, in); err != nil {
		return fmt.Errorf("reading partial download: %w", err)
	}
	return nil
}

// contentRangeStart parses "bytes START-END/TOTAL"; -1 when malformed.
func contentRangeStart(s string) int64 {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return -1
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func sumEqual(a, b []byte) bool { return string(a) == string(b) }

func tarballBase(u string) string {
	if p, err := url.Parse(u); err == nil && p.Path != "" {
		return filepath.Base(p.Path)
	}
	return "libchdb.tgz"
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// progressWriter prints a line per 10% (or per 16 MB when the size is
// unknown).
type progressWriter struct {
	w           io.Writer
	done, total int64
	last        int64
	start       time.Time
}

func (p *progressWriter) announce(u string) {
	if p.w == nil {
		return
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "libchdb: downloading %s (%.1f MB)\n", u, mb(p.total))
	} else {
		fmt.Fprintf(p.w, "libchdb: downloading %s\n", u)
	}
	p.last = p.done
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.w == nil {
		return len(b), nil
	}
	step := int64(16 << 20)
	if p.total > 0 {
		step = p.total / 10
	}
	if p.done-p.last >= step {
		p.last = p.done
		if p.total > 0 {
			fmt.Fprintf(p.w, "libchdb: %3d%% (%.1f / %.1f MB)\n", p.done*100/p.total, mb(p.done), mb(p.total))
		} else {
			fmt.Fprintf(p.w, "libchdb: %.1f MB\n", mb(p.done))
		}
	}
	return len(b), nil
}

func (p *progressWriter) finish() {
	if p.w != nil {
		fmt.Fprintf(p.w, "libchdb: downloaded %.1f MB in %s\n", mb(p.done), time.Since(p.start).Round(100*time.Millisecond))
	}
}
