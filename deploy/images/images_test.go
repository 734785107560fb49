package images_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/deploy/images"
)

// services are the images `make images` builds.
var services = []string{"poller", "enricher", "loader"}

// host is the platform the test can run binaries of.
var host = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}

var spec = images.Spec{
	Version:  "v0.0.0-test",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Source:   "https://github.com/auditpipe/auditpipe",
	Created:  time.Unix(1700000000, 0).UTC(),
}

// release is the `make images` flow for the host platform, built once in
// TestMain into out.
var (
	release images.Release
	built   []images.Built
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(&buildFirst{m})
}

// buildFirst builds the release before the tests run (and removes it after).
type buildFirst struct{ m *testing.M }

func (b *buildFirst) Run() int {
	out, err := os.MkdirTemp("", "images-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(out)
	release = images.Release{Root: "../..", Out: out, Services: services, Platforms: []v1.Platform{host}, Repository: "auditpipe", Spec: spec}
	built, err = release.Run(context.Background(), io.Discard)
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the images: %v\n", err)
		return 1
	}
	return b.m.Run()
}

// serviceIndex reads the service's image index back from its OCI layout.
func serviceIndex(t *testing.T, out, service string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	root, err := layout.ImageIndexFromPath(filepath.Join(out, "oci", service))
	require.NoError(t, err)
	m, err := root.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, 1, "one entry per layout: the service's index")
	d := m.Manifests[0]
	assert.Equal(t, types.OCIImageIndex, d.MediaType)
	idx, err := root.ImageIndex(d.Digest)
	require.NoError(t, err)
	return idx, d
}

func TestImageConfig(t *testing.T) {
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			idx, d := serviceIndex(t, release.Out, svc)
			assert.Equal(t, "auditpipe/"+svc+":"+spec.Version, d.Annotations[images.RefNameAnnotation])
			img, err := images.ForPlatform(idx, host)
			require.NoError(t, err)
			cf, err := img.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, []string{"/usr/local/bin/" + svc}, cf.Config.Entrypoint)
			assert.Empty(t, cf.Config.Cmd)
			assert.Equal(t, "65532:65532", cf.Config.User)
			assert.Equal(t, host.OS, cf.OS)
			assert.Equal(t, host.Architecture, cf.Architecture)
			assert.Equal(t, spec.Created, cf.Created.UTC())
			assert.Equal(t, spec.Source, cf.Config.Labels[images.LabelSource])
			assert.Equal(t, spec.Version, cf.Config.Labels[images.LabelVersion])
			assert.Equal(t, spec.Revision, cf.Config.Labels[images.LabelRevision])
			mt, err := img.MediaType()
			require.NoError(t, err)
			assert.Equal(t, types.OCIManifestSchema1, mt)

			files := imageContents(t, svc).files
			assert.NotContains(t, files, "bin/sh", "no shell")
			for _, f := range []string{"etc/passwd", "etc/group", "tmp/", "home/nonroot/", "usr/local/bin/" + svc} {
				assert.Contains(t, files, f)
			}
			bin := files["usr/local/bin/"+svc]
			assert.Equal(t, 0, bin.Uid, "the binary belongs to root: the user cannot change it")
			assert.Equal(t, int64(0o755), bin.Mode)
			assert.Equal(t, spec.Created, bin.ModTime.UTC())
			assert.Equal(t, 65532, files["home/nonroot/"].Uid)
		})
	}
}

// contents is what a service image's layers hold, read once per service:
// decompressing the layers is most of these tests' time under -race.
type contents struct {
	files  map[string]*tar.Header // by path, relative
	binary string                 // the service binary, extracted to a file
}

var (
	contentsMu    sync.Mutex
	contentsCache = map[string]*contents{}
)

// imageContents reads the host-platform image of service from the layout.
func imageContents(t *testing.T, service string) *contents {
	t.Helper()
	contentsMu.Lock()
	defer contentsMu.Unlock()
	if c, ok := contentsCache[service]; ok {
		return c
	}
	idx, _ := serviceIndex(t, release.Out, service)
	img, err := images.ForPlatform(idx, host)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 2, "base + binary")
	c := &contents{files: map[string]*tar.Header{}, binary: filepath.Join(release.Out, "extracted", service)}
	require.NoError(t, os.MkdirAll(filepath.Dir(c.binary), 0o755))
	for _, l := range layers {
		rc, err := l.Uncompressed()
		require.NoError(t, err)
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			c.files[h.Name] = h
			if h.Name == "usr/local/bin/"+service {
				f, err := os.OpenFile(c.binary, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
				require.NoError(t, err)
				_, err = io.Copy(f, tr)
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
		}
		require.NoError(t, rc.Close())
	}
	require.FileExists(t, c.binary, "the binary is in a layer")
	contentsCache[service] = c
	return c
}

func TestBinaryFromLayerRuns(t *testing.T) {
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			bin := imageContents(t, svc).binary

			out, err := exec.Command(bin, "--version").CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Equal(t, svc+" "+spec.Version+"\n", string(out))

			cmd := exec.Command(bin, "--check-config", "--config", filepath.Join("..", "config", svc+".yaml"))
			// The example's only secret, as the Makefile's check-configs gives it.
			cmd.Env = []string{"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=sk-admin-example"}
			out, err = cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "configuration OK")
		})
	}
}

func TestDockerTarball(t *testing.T) {
	for _, b := range built {
		t.Run(b.Service, func(t *testing.T) {
			tag, err := name.NewTag(b.Ref)
			require.NoError(t, err)
			img, err := tarball.ImageFromPath(b.Tarball, &tag)
			require.NoError(t, err, "docker load reads the same format")
			// docker save format re-encodes the manifest; the layers and
			// config are the layout's own.
			idx, _ := serviceIndex(t, release.Out, b.Service)
			want, err := images.ForPlatform(idx, b.Platform)
			require.NoError(t, err)
			gotCfg, err := img.ConfigName()
			require.NoError(t, err)
			wantCfg, err := want.ConfigName()
			require.NoError(t, err)
			assert.Equal(t, wantCfg, gotCfg)
			gotLayers, err := img.Layers()
			require.NoError(t, err)
			wantLayers, err := want.Layers()
			require.NoError(t, err)
			require.Len(t, gotLayers, len(wantLayers))
			for i := range gotLayers {
				g, err := gotLayers[i].Digest()
				require.NoError(t, err)
				w, err := wantLayers[i].Digest()
				require.NoError(t, err)
				assert.Equal(t, w, g)
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	// A second build (compiled again, into another directory) of one
	// service: the whole flow again, kept to the smallest image because
	// compressing layers under the race detector is slow.
	again := release
	again.Out = t.TempDir()
	again.Services = []string{"poller"}
	rebuilt, err := again.Run(context.Background(), io.Discard)
	require.NoError(t, err)
	require.Len(t, rebuilt, 1)
	require.Equal(t, "poller", built[0].Service)
	assert.Equal(t, built[0].Digest, rebuilt[0].Digest, "a second build gives the same image")
	assert.Equal(t, built[0].Index, rebuilt[0].Index, "and the same index")
	first, err := os.ReadFile(filepath.Join(release.Out, "digests.txt"))
	require.NoError(t, err)
	second, err := os.ReadFile(filepath.Join(again.Out, "digests.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(first), string(second), "digests.txt lists the same digests")

	// What goes in decides the digest, never when the files were written
	// (on a small binary: each digest compresses the layers).
	var bin string
	for _, b := range stubBinaries(t) {
		if b.Platform.Equals(host) {
			bin = b.Path
		}
	}
	s := spec
	s.Name = "stub"
	digest := func(s images.Spec) v1.Hash {
		img, err := images.Image(s, host, bin)
		require.NoError(t, err)
		d, err := img.Digest()
		require.NoError(t, err)
		return d
	}
	before := digest(s)
	require.NoError(t, os.Chtimes(bin, time.Now(), time.Now().Add(-time.Hour)))
	assert.Equal(t, before, digest(s), "the binary's file time does not leak into the image")
	later := s
	later.Created = s.Created.Add(time.Second)
	assert.NotEqual(t, before, digest(later), "the epoch is the image's time")
	other := s
	other.Revision = "fedcba"
	assert.NotEqual(t, before, digest(other), "labels are part of the config")
}

var (
	stubOnce sync.Once
	stubBins []images.PlatformBinary
	stubErr  error
)

// stubBinaries compiles a tiny program for linux/amd64 and linux/arm64,
// once per test binary.
func stubBinaries(t *testing.T) []images.PlatformBinary {
	t.Helper()
	stubOnce.Do(func() {
		dir := filepath.Join(release.Out, "stub")
		if stubErr = os.MkdirAll(dir, 0o755); stubErr != nil {
			return
		}
		if stubErr = os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module stub\n\ngo 1.26\n"), 0o644); stubErr != nil {
			return
		}
		if stubErr = os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); stubErr != nil {
			return
		}
		platforms, err := images.ParsePlatforms("linux/amd64,linux/arm64")
		if stubErr = err; err != nil {
			return
		}
		for _, p := range platforms {
			out := filepath.Join(dir, "stub-"+p.Architecture)
			if stubErr = images.Compile(context.Background(), images.Build{ModuleDir: dir, Package: ".", Platform: p, Version: "x", Output: out}); stubErr != nil {
				return
			}
			stubBins = append(stubBins, images.PlatformBinary{Platform: p, Path: out})
		}
	})
	require.NoError(t, stubErr)
	return stubBins
}

// TestMultiPlatformIndex builds an index for linux/amd64 and linux/arm64
// from a tiny program (cross-compiling the services for a second platform
// is `make images`' job, too slow for every test run).
func TestMultiPlatformIndex(t *testing.T) {
	bins := stubBinaries(t)
	platforms := []v1.Platform{bins[0].Platform, bins[1].Platform}
	s := spec
	s.Name = "stub"
	idx, err := images.Index(s, bins)
	require.NoError(t, err)
	m, err := idx.IndexManifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIImageIndex, m.MediaType)
	require.Len(t, m.Manifests, 2)
	for i, d := range m.Manifests {
		require.NotNil(t, d.Platform)
		assert.Equal(t, platforms[i], *d.Platform)
		assert.Equal(t, types.OCIManifestSchema1, d.MediaType)
		img, err := idx.Image(d.Digest)
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, platforms[i].Architecture, cf.Architecture, "the config's platform matches the index entry")
	}
	assert.NotEqual(t, m.Manifests[0].Digest, m.Manifests[1].Digest)

	wrong := []images.PlatformBinary{{Platform: platforms[1], Path: bins[0].Path}}
	_, err = images.Index(s, wrong)
	assert.ErrorContains(t, err, "is for EM_X86_64, the image is linux/arm64")
	_, err = images.Index(s, append(bins, bins[0]))
	assert.ErrorContains(t, err, "given twice")
}

func TestCheckBinary(t *testing.T) {
	script := filepath.Join(t.TempDir(), "run.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755))
	dynamic, err := exec.LookPath("ls") // any dynamically linked system binary
	require.NoError(t, err)
	cases := []struct {
		name     string
		path     string
		platform v1.Platform
		err      string
	}{
		{name: "static service binary", path: filepath.Join(release.Out, "build", "poller-linux-"+runtime.GOARCH), platform: host},
		{name: "script", path: script, platform: host, err: "not an ELF executable"},
		{name: "dynamically linked", path: dynamic, platform: host, err: "CGO_ENABLED=0"},
		{name: "not linux", path: script, platform: v1.Platform{OS: "windows", Architecture: "amd64"}, err: "only linux"},
		{name: "unknown architecture", path: script, platform: v1.Platform{OS: "linux", Architecture: "s390x"}, err: "unsupported architecture"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := images.CheckBinary(tc.path, tc.platform)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.err), "%v", err)
		})
	}
}

func TestSpecValidate(t *testing.T) {
	err := images.Spec{}.Validate()
	for _, key := range []string{"name", "version", "revision", "source", "created"} {
		assert.ErrorContains(t, err, key+": required")
	}
}
