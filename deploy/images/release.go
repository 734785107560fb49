package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Release is what `make images` builds: every service for every platform.
type Release struct {
	// Root is the repository's root (holding poller/, enricher/, loader/).
	Root string
	// Out receives oci/<service> (an OCI layout each), one docker-loadable
	// <service>-<os>-<arch>.tar per platform, digests.txt, and the binaries
	// under build/.
	Out string
	// Services are the services to build, e.g. poller, enricher, loader.
	Services []string
	// Platforms are the targets, e.g. linux/amd64, linux/arm64.
	Platforms []v1.Platform
	// Repository prefixes the image names: <Repository>/<service>:<Version>.
	Repository string
	// Spec holds the version, revision, source and time common to all
	// images; Name is set per service.
	Spec Spec
	// Go is the go command (default "go").
	Go string
}

// Built is one platform image of a release.
type Built struct {
	Service  string
	Ref      string // <repository>/<service>:<version>
	Platform v1.Platform
	Digest   v1.Hash // of the image manifest
	Index    v1.Hash // of the service's image index
	Size     int64   // manifest + config + compressed layers, bytes
	Tarball  string  // the docker-loadable file
}

// Run compiles, builds and writes every image, logging progress to log. It
// returns the images built, by service then platform.
func (r Release) Run(ctx context.Context, log io.Writer) ([]Built, error) {
	var out []Built
	for _, svc := range r.Services {
		spec := r.Spec
		spec.Name = svc
		bins, err := r.compile(ctx, svc, log)
		if err != nil {
			return nil, err
		}
		built, err := r.write(spec, bins)
		if err != nil {
			return nil, err
		}
		out = append(out, built...)
	}
	if err := writeDigests(filepath.Join(r.Out, "digests.txt"), out); err != nil {
		return nil, err
	}
	return out, nil
}

// Ref returns the image reference of service.
func (r Release) Ref(service string) string {
	return r.Repository + "/" + service + ":" + r.Spec.Version
}

// compile builds the service's binary for every platform.
func (r Release) compile(ctx context.Context, svc string, log io.Writer) ([]PlatformBinary, error) {
	var bins []PlatformBinary
	for _, p := range r.Platforms {
		fmt.Fprintf(log, "==> compiling %s for %s\n", svc, p)
		b := Build{
			ModuleDir: filepath.Join(r.Root, svc),
			Package:   "./cmd/" + svc,
			Platform:  p,
			Version:   r.Spec.Version,
			Output:    filepath.Join(r.Out, "build", svc+"-"+platformSuffix(p)),
			Go:        r.Go,
		}
		if err := Compile(ctx, b); err != nil {
			return nil, err
		}
		bins = append(bins, PlatformBinary{Platform: p, Path: b.Output})
	}
	return bins, nil
}

// write builds the service's index and writes its layout and tarballs.
func (r Release) write(spec Spec, bins []PlatformBinary) ([]Built, error) {
	idx, err := Index(spec, bins)
	if err != nil {
		return nil, err
	}
	ref := r.Ref(spec.Name)
	if err := WriteLayout(filepath.Join(r.Out, "oci", spec.Name), idx, ref); err != nil {
		return nil, err
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of the %s index: %w", spec.Name, err)
	}
	var out []Built
	for _, b := range bins {
		img, err := ForPlatform(idx, b.Platform)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(r.Out, spec.Name+"-"+platformSuffix(b.Platform)+".tar")
		if err := WriteDockerTarball(path, ref, img); err != nil {
			return nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("digest of the %s image: %w", spec.Name, err)
		}
		size, err := ImageSize(img)
		if err != nil {
			return nil, err
		}
		out = append(out, Built{Service: spec.Name, Ref: ref, Platform: b.Platform, Digest: d, Index: idxDigest, Size: size, Tarball: path})
	}
	return out, nil
}

// ForPlatform returns the image of idx for platform.
func ForPlatform(idx v1.ImageIndex, platform v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Equals(platform) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("the index has no image for %s", platform)
}

// ImageSize is what pulling img transfers: its manifest, config and
// compressed layers.
func ImageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, fmt.Errorf("reading the manifest: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, fmt.Errorf("reading the manifest: %w", err)
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return size, nil
}

// Summary formats built as a table: reference, platform, size, digests.
func Summary(built []Built) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPLATFORM\tSIZE\tIMAGE DIGEST\tINDEX DIGEST")
	for _, b := range built {
		fmt.Fprintf(tw, "%s\t%s\t%.1f MiB\t%s\t%s\n", b.Ref, b.Platform, float64(b.Size)/(1<<20), b.Digest, b.Index)
	}
	_ = tw.Flush()
	return sb.String()
}

// writeDigests writes one line per image, sorted: the file two builds
// are compared by.
func writeDigests(path string, built []Built) error {
	var lines []string
	seen := map[string]bool{}
	for _, b := range built {
		lines = append(lines, fmt.Sprintf("%s %s %s", b.Ref, b.Platform, b.Digest))
		if !seen[b.Ref] {
			seen[b.Ref] = true
			lines = append(lines, fmt.Sprintf("%s index %s", b.Ref, b.Index))
		}
	}
	sort.Strings(lines)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func platformSuffix(p v1.Platform) string {
	s := p.OS + "-" + p.Architecture
	if p.Variant != "" {
		s += "-" + p.Variant
	}
	return s
}

// ParsePlatforms parses a comma-separated list such as
// "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := v1.ParsePlatform(f)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", f, err)
		}
		out = append(out, *p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform in %q", s)
	}
	return out, nil
}
