// Package kubetools builds the real Kubernetes API server and etcd that
// `make deploy-test` installs the chart on, and fetches the CRDs of KEDA and
// the Prometheus Operator that the server validates the chart's objects
// against.
//
// The binaries come from source, through the Go module proxy: the tool
// module deploy/kube (a module of its own, so that no other module carries
// the Kubernetes build) pins k8s.io/kubernetes and etcd, and Build compiles
// them with GOWORK=off into the per-user cache,
// ~/.cache/auditpipe/kube/<version>-<hash of the tool module>/, once: a later
// run finds them there. The version is linked into the server
// (k8s.io/component-base/version), so that discovery reports it and the
// chart's kubeVersion constraint is checked against it. The CRDs are read
// from the modules that publish them, downloaded (checksum-verified) into the
// module cache.
package kubetools

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Version is the Kubernetes release the tool module builds.
const Version = "v1.37.2"

// ModuleDir is the tool module, relative to the repository root.
const ModuleDir = "deploy/kube"

// packages are what Build compiles: the API server and etcd's server.
var packages = map[string]string{
	"kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
	"etcd":           "go.etcd.io/etcd/server/v3",
}

// Tools are the built binaries.
type Tools struct {
	APIServer string
	Etcd      string
}

// CacheDir is where Build puts the binaries of the tool module at root:
// the user's cache directory, keyed by the Kubernetes version and a hash of
// the tool module's go.mod and go.sum (a change to either builds anew).
func CacheDir(root string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("the per-user cache directory: %w", err)
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, ModuleDir, f))
		if err != nil {
			return "", fmt.Errorf("reading the tool module: %w", err)
		}
		h.Write(b)
	}
	return filepath.Join(base, "auditpipe", "kube", Version+"-"+hex.EncodeToString(h.Sum(nil))[:12]), nil
}

// Build returns the binaries, compiling them first when the cache does not
// hold them yet, and reports progress to log (a line every few dozen
// packages: a cold build compiles about two thousand).
func Build(ctx context.Context, root string, log io.Writer) (Tools, error) {
	dir, err := CacheDir(root)
	if err != nil {
		return Tools{}, err
	}
	t := Tools{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}
	if exists(t.APIServer) && exists(t.Etcd) {
		fmt.Fprintf(log, "==> kube-apiserver and etcd %s: cached in %s\n", Version, dir)
		return t, nil
	}
	total, err := countPackages(ctx, root)
	if err != nil {
		return Tools{}, err
	}
	fmt.Fprintf(log, "==> building kube-apiserver %s and etcd from source into %s (%d packages; about 10 CPU-minutes cold)\n", Version, dir, total)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Tools{}, fmt.Errorf("creating the cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return Tools{}, fmt.Errorf("creating the cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, pkg := range packages {
		if err := compile(ctx, root, pkg, filepath.Join(tmp, name), total, log); err != nil {
			return Tools{}, err
		}
	}
	// Publish both at once: a directory is there whole or not at all.
	if err := os.Rename(tmp, dir); err != nil && !exists(t.APIServer) {
		return Tools{}, fmt.Errorf("moving the binaries into %s: %w", dir, err)
	}
	return t, nil
}

// ldflags link the release into k8s.io/component-base/version: discovery
// reports it, and Helm checks the chart's kubeVersion against it.
func ldflags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(Version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	const v = "k8s.io/component-base/version"
	return strings.Join([]string{"-s", "-w",
		"-X", v + ".gitVersion=" + Version, "-X", v + ".gitMajor=" + major, "-X", v + ".gitMinor=" + minor,
		"-X", v + ".gitTreeState=clean", "-X", v + ".buildDate=1970-01-01T00:00:00Z",
	}, " ")
}

// compile builds pkg into out, printing a progress line every 50 packages
// go build compiles (those in the build cache are not counted: total is
// the most there can be).
func compile(ctx context.Context, root, pkg, out string, total int, log io.Writer) error {
	cmd := goCmd(ctx, root, "build", "-trimpath", "-v", "-ldflags", ldflags(), "-o", out, pkg)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	var tail []string
	n := 0
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		if tail = append(tail, line); len(tail) > 40 {
			tail = tail[1:]
		}
		if !strings.HasPrefix(line, "#") && !strings.Contains(line, " ") {
			if n++; n%50 == 0 {
				fmt.Fprintf(log, "    %s: %d packages compiled (of at most %d), %s\n", filepath.Base(out), n, total, time.Since(start).Round(time.Second))
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, ModuleDir, err, strings.Join(tail, "\n"))
	}
	fmt.Fprintf(log, "    %s: built in %s (%d packages compiled)\n", filepath.Base(out), time.Since(start).Round(time.Second), n)
	return nil
}

// countPackages is the number of packages both binaries depend on.
func countPackages(ctx context.Context, root string) (int, error) {
	args := []string{"list", "-deps"}
	for _, p := range packages {
		args = append(args, p)
	}
	out, err := goCmd(ctx, root, args...).Output()
	if err != nil {
		return 0, fmt.Errorf("go list in %s: %w", ModuleDir, exitDetail(err))
	}
	return strings.Count(string(out), "\n"), nil
}

// goCmd runs go in the tool module, outside the workspace, statically.
func goCmd(ctx context.Context, root string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(root, ModuleDir)
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	return cmd
}

// CRD modules: the Go modules whose trees hold the CRDs the chart's
// optional objects are validated against. prometheus-operator's root
// module at v0.85.0 is the newest the module proxy serves; its v1
// ServiceMonitor and PrometheusRule are those of the API types the tests
// decode into (pkg/apis/monitoring v0.95.2).
var crdModules = []struct {
	module string
	files  []string
}{
	{module: "github.com/kedacore/keda/v2@v2.20.2", files: []string{
		"config/crd/bases/keda.sh_scaledobjects.yaml",
		"config/crd/bases/keda.sh_triggerauthentications.yaml",
	}},
	{module: "github.com/prometheus-operator/prometheus-operator@v0.85.0", files: []string{
		"example/prometheus-operator-crd-full/monitoring.coreos.com_servicemonitors.yaml",
		"example/prometheus-operator-crd-full/monitoring.coreos.com_prometheusrules.yaml",
	}},
}

// CRDs downloads the CRD modules into the module cache (verified against
// the checksum database) and returns the CRD files' paths.
func CRDs(ctx context.Context, root string) ([]string, error) {
	var paths []string
	for _, m := range crdModules {
		out, err := goCmd(ctx, root, "mod", "download", "-json", m.module).Output()
		if err != nil {
			return nil, fmt.Errorf("downloading %s: %w", m.module, exitDetail(err))
		}
		var info struct{ Dir, Error string }
		if err := json.Unmarshal(out, &info); err != nil {
			return nil, fmt.Errorf("downloading %s: %w", m.module, err)
		}
		if info.Error != "" {
			return nil, fmt.Errorf("downloading %s: %s", m.module, info.Error)
		}
		for _, f := range m.files {
			p := filepath.Join(info.Dir, f)
			if !exists(p) {
				return nil, fmt.Errorf("%s has no %s", m.module, f)
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
