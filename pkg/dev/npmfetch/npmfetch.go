// Package npmfetch fetches files out of pinned npm package tarballs into a
// per-user cache: the development infrastructure's way of getting the
// ClickHouse engine (libchdb) and the scripts of ClickHouse's web pages
// without a package manager.
//
// A tarball is pinned by the npm registry's dist.integrity (sha512): nothing
// unverified ever reaches the cache. Downloads resume after an interruption
// (HTTP Range on the kept .part file), print progress, and say what to do
// when the registry cannot be reached. A file lock in the cache directory
// serializes fetches of several processes.
package npmfetch

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

// ErrIntegrity reports a downloaded tarball whose sha512 differs from the
// pinned integrity.
var ErrIntegrity = errors.New("integrity mismatch")

// Tarball is one pinned npm package tarball.
type Tarball struct {
	Name      string // what progress lines and errors call it, e.g. "libchdb" or "uplot@1.6.21"
	URL       string // the registry's dist.tarball
	Integrity string // the registry's dist.integrity, "sha512-<base64>"
}

// Fetcher fetches tarballs through Dir, which holds the partial downloads
// and the lock. Its zero Client means http.DefaultClient.
type Fetcher struct {
	Dir      string
	Client   *http.Client
	Progress io.Writer // progress lines; nil for none
	// OfflineHint ends the error of a download the network failed, e.g.
	// "run `make deps` once online".
	OfflineHint string
}

// CacheDir returns $XDG_CACHE_HOME (or os.UserCacheDir) joined with
// "auditpipe" and elem.
func CacheDir(elem ...string) (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("locating user cache dir: %w", err)
		}
		base = d
	}
	return filepath.Join(append([]string{base, "auditpipe"}, elem...)...), nil
}

// Exists reports whether a regular file is at p.
func Exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Extract puts the tarball member (e.g. "package/libchdb.so") at dst with
// mode perm, unless a regular file is there already. It downloads t into
// Dir/<tarball>.part, resuming an interrupted download with an HTTP Range
// request (and restarting when the server ignores ranges or the resumed
// file fails verification), checks the sha512 against t.Integrity, and
// writes dst through a temp file and a rename, so a reader never sees a
// partial file. A tarball that fails verification is removed. It blocks
// while another process fetches into the same Dir.
func (f *Fetcher) Extract(ctx context.Context, t Tarball, member, dst string, perm os.FileMode) error {
	if Exists(dst) {
		return nil
	}
	want, err := parseIntegrity(t.Integrity)
	if err != nil {
		return err
	}
	for _, d := range []string{f.Dir, filepath.Dir(dst)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating cache dir: %w", err)
		}
	}
	unlock, err := lockDir(f.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	if Exists(dst) { // another process finished while we waited
		return nil
	}
	start := time.Now()
	part := filepath.Join(f.Dir, tarballBase(t.URL)+".part")
	if err := f.fetchVerified(ctx, t, part, want); err != nil {
		return err
	}
	if err := extractMember(part, member, dst, perm); err != nil {
		return fmt.Errorf("extracting %s from %s: %w", member, t.Name, err)
	}
	st, _ := os.Stat(part)
	if err := os.Remove(part); err != nil {
		return fmt.Errorf("removing tarball: %w", err)
	}
	var size int64
	if st != nil {
		size = st.Size()
	}
	f.printf("%s verified (%.1f MB in %s), ready at %s\n", t.Name, mb(size), time.Since(start).Round(10*time.Millisecond), dst)
	return nil
}

// fetchVerified completes part and verifies it, starting over once when a
// resumed download fails verification; an unverifiable part is removed.
func (f *Fetcher) fetchVerified(ctx context.Context, t Tarball, part string, want []byte) error {
	resumed, err := f.download(ctx, t, part, want)
	if errors.Is(err, ErrIntegrity) && resumed {
		f.printf("%s: resumed download failed verification, restarting from scratch\n", t.Name)
		if rerr := os.Remove(part); rerr != nil {
			return fmt.Errorf("removing corrupt download: %w", rerr)
		}
		_, err = f.download(ctx, t, part, want)
	}
	if errors.Is(err, ErrIntegrity) {
		_ = os.Remove(part)
	}
	return err
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
func (f *Fetcher) download(ctx context.Context, t Tarball, part string, want []byte) (resumed bool, err error) {
	h := sha512.New()
	var have int64
	if st, err := os.Stat(part); err == nil && st.Size() > 0 {
		if err := hashFile(h, part); err != nil {
			return false, err
		}
		have = st.Size()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return false, fmt.Errorf("building request: %w", err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return false, f.offlineErr(t, err)
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
		f.printf("%s: resuming download at %.1f MB\n", t.Name, mb(have))
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The part file may already be complete; let verification decide.
		if string(h.Sum(nil)) == string(want) {
			return true, nil
		}
		return true, fmt.Errorf("verifying %s: %w", part, ErrIntegrity)
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
		h.Reset()
		have = 0
	default:
		return false, fmt.Errorf("fetching %s from %s: unexpected status %s", t.Name, hostOf(t.URL), resp.Status)
	}
	return resumed, f.save(t, resp.Body, part, flags, h, have, total, want)
}

// save copies body into part (opened with flags), hashing it into h and
// printing progress, then checks the hash against want.
func (f *Fetcher) save(t Tarball, body io.Reader, part string, flags int, h hash.Hash, have, total int64, want []byte) error {
	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("opening download file: %w", err)
	}
	pw := &progressWriter{w: f.Progress, name: t.Name, done: have, total: total, start: time.Now()}
	pw.announce(t.URL)
	_, cerr := io.Copy(io.MultiWriter(out, h, pw), body)
	serr := out.Sync()
	if err := errors.Join(cerr, serr, out.Close()); err != nil {
		if cerr != nil {
			return f.offlineErr(t, cerr)
		}
		return fmt.Errorf("writing download file: %w", err)
	}
	pw.finish()
	if string(h.Sum(nil)) != string(want) {
		return fmt.Errorf("verifying %s against %s: %w", tarballBase(t.URL), t.Integrity, ErrIntegrity)
	}
	return nil
}

func (f *Fetcher) offlineErr(t Tarball, err error) error {
	hint := "are you offline?"
	if f.OfflineHint != "" {
		hint += " " + f.OfflineHint
	}
	return fmt.Errorf("fetching %s from %s: %w (%s)", t.Name, hostOf(t.URL), err, hint)
}

// extractMember copies member out of the gzipped tarball at src into dst
// through a temp file in the same directory and a rename.
func extractMember(src, member, dst string, perm os.FileMode) error {
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
			return fmt.Errorf("%s not found in the tarball", member)
		}
		if err != nil {
			return fmt.Errorf("reading tarball: %w", err)
		}
		if hdr.Name == member && hdr.Typeflag == tar.TypeReg {
			return writeAtomic(dst, tr, perm)
		}
	}
}

func writeAtomic(dst string, r io.Reader, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(dst), err)
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

// parseIntegrity decodes an npm "sha512-<base64>" integrity.
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

func tarballBase(u string) string {
	if p, err := url.Parse(u); err == nil && p.Path != "" && p.Path != "/" {
		return filepath.Base(p.Path)
	}
	return "download.tgz"
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

// progressWriter prints a line per 10% (or per 16 MB when the size is
// unknown) of downloads over 1 MB.
type progressWriter struct {
	w           io.Writer
	name        string
	done, total int64
	last        int64
	start       time.Time
}

func (p *progressWriter) announce(u string) {
	if p.w == nil {
		return
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s: downloading %s (%.1f MB)\n", p.name, u, mb(p.total))
	} else {
		fmt.Fprintf(p.w, "%s: downloading %s\n", p.name, u)
	}
	p.last = p.done
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.w == nil || (p.total > 0 && p.total < 1<<20) {
		return len(b), nil
	}
	step := int64(16 << 20)
	if p.total > 0 {
		step = p.total / 10
	}
	if p.done-p.last >= step {
		p.last = p.done
		if p.total > 0 {
			fmt.Fprintf(p.w, "%s: %3d%% (%.1f / %.1f MB)\n", p.name, p.done*100/p.total, mb(p.done), mb(p.total))
		} else {
			fmt.Fprintf(p.w, "%s: %.1f MB\n", p.name, mb(p.done))
		}
	}
	return len(b), nil
}

func (p *progressWriter) finish() {
	if p.w != nil {
		fmt.Fprintf(p.w, "%s: downloaded %.1f MB in %s\n", p.name, mb(p.done), time.Since(p.start).Round(100*time.Millisecond))
	}
}
