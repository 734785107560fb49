package kafkabroker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Version is the Apache Kafka release that Ensure fetches. It must match
// kafka.version in maven/pom.xml and the jars in maven/jars.sha256.
const Version = "4.4.0"

// LibsEnv names an environment variable that, when set, points at a directory of
// Kafka jars to use instead of fetching (for example the libs/ directory of an
// Apache Kafka binary distribution). Its contents are not checksummed.
const LibsEnv = "AUDITPIPE_KAFKA_LIBS"

// ErrMavenNotFound is returned by Ensure when the jars are not cached and mvn is not on PATH.
var ErrMavenNotFound = errors.New("mvn (Apache Maven) not found: install it (apt-get install maven) to fetch Apache Kafka")

var (
	//go:embed maven/pom.xml
	pomXML []byte
	//go:embed maven/jars.sha256
	jarSums []byte
)

const (
	markerName = ".auditpipe-complete"
	// serverJar is the jar that must be on the class path: kafka.Kafka and
	// kafka.tools.StorageTool live in it.
	serverJar = "kafka_2.13-" + Version + ".jar"
)

// CacheDir returns the per-user directory Ensure keeps the jars under:
// ${XDG_CACHE_HOME:-~/.cache}/auditpipe/kafka/<Version> on Linux.
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory: %w", err)
	}
	return filepath.Join(base, "auditpipe", "kafka", Version), nil
}

// Ensure returns a directory holding every jar the broker needs, fetching them
// with Maven into CacheDir on first use. Maven runs with strict checksums
// (-C), and every jar is then checked against the SHA-256 sums pinned in
// maven/jars.sha256; the directory appears atomically (fetched into a temporary
// directory, then renamed) with a marker file, so an interrupted fetch is simply
// redone. Progress lines go to progress (nil discards them). Ensure blocks until
// done; concurrent calls, also from other processes, are serialised with a file lock.
func Ensure(ctx context.Context, progress io.Writer) (libDir string, err error) {
	if progress == nil {
		progress = io.Discard
	}
	if dir := os.Getenv(LibsEnv); dir != "" {
		if err := checkServerJar(dir); err != nil {
			return "", fmt.Errorf("checking %s=%s: %w", LibsEnv, dir, err)
		}
		return dir, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	libDir = filepath.Join(cache, "lib")
	want, err := expectedMarker()
	if err != nil {
		return "", err
	}
	if verifyLib(libDir, want) == nil {
		return libDir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("creating cache directory: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if verifyLib(libDir, want) == nil { // another process fetched while we waited
		return libDir, nil
	}
	if err := install(ctx, cache, libDir, want, progress); err != nil {
		return "", err
	}
	return libDir, nil
}

// install fetches the jars into a temporary directory under cache, checks
// them against the pinned sums, marks the directory complete with marker and
// renames it to libDir, replacing what was there. The caller holds the cache
// lock. On error libDir is left as it was, or removed.
func install(ctx context.Context, cache, libDir string, marker []byte, progress io.Writer) error {
	start := time.Now()
	fmt.Fprintf(progress, "kafka: fetching Apache Kafka %s jars from Maven Central into %s\n", Version, libDir)
	tmp, err := os.MkdirTemp(cache, "fetch-")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	tmpLib := filepath.Join(tmp, "lib")
	if err := FetchJars(ctx, tmpLib, progress); err != nil {
		return err
	}
	pinned, err := parseSums(jarSums)
	if err != nil {
		return err
	}
	if err := verifySums(tmpLib, pinned); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmpLib, markerName), marker, 0o644); err != nil {
		return fmt.Errorf("writing marker: %w", err)
	}
	if err := os.RemoveAll(libDir); err != nil {
		return fmt.Errorf("removing stale jars: %w", err)
	}
	if err := os.Rename(tmpLib, libDir); err != nil {
		return fmt.Errorf("moving jars into place: %w", err)
	}
	n, size := dirStats(libDir)
	fmt.Fprintf(progress, "kafka: %d jars (%.1f MiB) ready in %s (%s)\n", n, float64(size)/(1<<20), libDir, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// FetchJars runs Maven to copy the runtime jars of maven/pom.xml into dir
// (created if missing), with strict checksum checking against the repository.
// It does not check the pinned SHA-256 sums; Ensure does. Use it directly only
// to regenerate maven/jars.sha256 after changing Version. Blocks until Maven exits.
func FetchJars(ctx context.Context, dir string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return ErrMavenNotFound
	}
	work, err := os.MkdirTemp("", "auditpipe-kafka-pom-")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(work)
	pom := filepath.Join(work, "pom.xml")
	if err := os.WriteFile(pom, pomXML, 0o644); err != nil {
		return fmt.Errorf("writing pom.xml: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", dir, err)
	}
	cmd := exec.CommandContext(ctx, mvn, "-B", "-C", "-f", pom,
		"dependency:copy-dependencies",
		"-DoutputDirectory="+abs,
		"-DincludeScope=runtime",
		"-Dmdep.overWriteReleases=true",
	)
	cmd.Dir = work
	out := &mavenOutput{progress: progress}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running mvn dependency:copy-dependencies: %w\n%s", err, out.tail())
	}
	return checkServerJar(abs)
}

// mavenOutput forwards Maven's download and error lines to progress and keeps
// the last lines for error messages. Bounded: at most tailLines lines are kept.
type mavenOutput struct {
	progress io.Writer
	partial  []byte
	lines    []string
}

const tailLines = 40

func (m *mavenOutput) Write(p []byte) (int, error) {
	m.partial = append(m.partial, p...)
	for {
		i := bytes.IndexByte(m.partial, '\n')
		if i < 0 {
			break
		}
		m.line(string(bytes.TrimRight(m.partial[:i], "\r")))
		m.partial = m.partial[i+1:]
	}
	if len(m.partial) > 64<<10 { // a line this long is noise; keep memory bounded
		m.line(string(m.partial[:1024]) + "…")
		m.partial = m.partial[:0]
	}
	return len(p), nil
}

func (m *mavenOutput) line(l string) {
	m.lines = append(m.lines, l)
	if len(m.lines) > tailLines {
		m.lines = m.lines[len(m.lines)-tailLines:]
	}
	switch msg := strings.TrimPrefix(l, "[INFO] "); {
	case strings.HasPrefix(msg, "Downloaded from"):
		// "Downloaded from central: https://…/kafka_2.13-4.4.0.jar (6.9 MB at 12 MB/s)"
		if strings.Contains(l, ".jar ") {
			fields := strings.Fields(msg)
			if len(fields) >= 4 {
				fmt.Fprintf(m.progress, "kafka: downloaded %s %s\n", path.Base(fields[3]), strings.Join(fields[4:], " "))
			}
		}
	case strings.HasPrefix(l, "[ERROR]"), strings.HasPrefix(l, "[WARNING]"):
		fmt.Fprintf(m.progress, "kafka: mvn: %s\n", l)
	}
}

func (m *mavenOutput) tail() string { return strings.Join(m.lines, "\n") }

// expectedMarker is the content of a complete cache's marker file: it ties the
// cache to this exact pom and pinned sums, so changing either refetches.
func expectedMarker() ([]byte, error) {
	pinned, err := parseSums(jarSums)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "kafka %s\npom %x\nsums %x\n", Version, sha256.Sum256(pomXML), sha256.Sum256(jarSums))
	names := make([]string, 0, len(pinned))
	for name := range pinned {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "jar %s\n", name)
	}
	return b.Bytes(), nil
}

// verifyLib checks the marker and that every listed jar is present. It is the
// fast path of Ensure and does not hash the jars.
func verifyLib(dir string, want []byte) error {
	got, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return fmt.Errorf("reading marker: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("marker does not match this version")
	}
	sc := bufio.NewScanner(bytes.NewReader(got))
	for sc.Scan() {
		name, ok := strings.CutPrefix(sc.Text(), "jar ")
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("checking cached jar: %w", err)
		}
	}
	return nil
}

// parseSums reads `sha256sum` output: "<64 hex>  <file name>" per line; blank
// lines and lines starting with # are ignored.
func parseSums(b []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimLeft(strings.TrimSpace(name), "*")
		if !ok || name == "" || len(sum) != 64 || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("parsing jars.sha256 line %d: want \"<sha256>  <file>\", got %q", n, line)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("parsing jars.sha256 line %d: %w", n, err)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("parsing jars.sha256 line %d: %s listed twice", n, name)
		}
		sums[name] = strings.ToLower(sum)
	}
	if len(sums) == 0 {
		return nil, errors.New("parsing jars.sha256: no jars listed")
	}
	return sums, nil
}

// SumJars returns `sha256sum`-style lines for every jar in dir, sorted by name.
func SumJars(dir string) (string, error) {
	got, err := hashJars(dir)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(got))
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%s  %s\n", got[name], name)
	}
	return b.String(), nil
}

func hashJars(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing jars: %w", err)
	}
	got := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jar") {
			continue
		}
		sum, err := hashFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		got[e.Name()] = sum
	}
	return got, nil
}

func hashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("opening jar: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifySums checks that dir holds exactly the pinned jars with the pinned sums.
func verifySums(dir string, pinned map[string]string) error {
	got, err := hashJars(dir)
	if err != nil {
		return err
	}
	var problems []string
	for name, sum := range pinned {
		switch g, ok := got[name]; {
		case !ok:
			problems = append(problems, "missing "+name)
		case g != sum:
			problems = append(problems, fmt.Sprintf("%s: sha256 %s, pinned %s", name, g, sum))
		}
	}
	for name := range got {
		if _, ok := pinned[name]; !ok {
			problems = append(problems, "unexpected "+name)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("verifying jars against maven/jars.sha256 (%d problems; after changing Version regenerate it with `go run ./kafkabroker/cmd/kafkafetch -write-sums kafkabroker/maven/jars.sha256`):\n  %s",
			len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

func checkServerJar(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar"))
	if err != nil {
		return fmt.Errorf("looking for the server jar: %w", err)
	}
	if len(matches) == 0 {
		return fmt.Errorf("no kafka_2.13-*.jar in %s", dir)
	}
	return nil
}

func dirStats(dir string) (n int, size int64) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".jar") {
			n++
			size += info.Size()
		}
	}
	return n, size
}
