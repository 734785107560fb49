package images

import (
	"errors"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the numeric user and group the images run as (distroless's
// nonroot).
const User = 65532

// Label keys set on every image (OCI annotation keys, used as labels).
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
)

// Spec describes one service's image.
type Spec struct {
	// Name is the service and the binary's name, e.g. "poller".
	Name string
	// Version, Revision and Source become the OCI labels.
	Version  string
	Revision string
	Source   string
	// Created is the time written everywhere a time goes; a fixed one
	// (SOURCE_DATE_EPOCH) makes the digest reproducible.
	Created time.Time
}

// Validate reports every missing field.
func (s Spec) Validate() error {
	var errs []error
	for _, f := range []struct{ key, v string }{{"name", s.Name}, {"version", s.Version}, {"revision", s.Revision}, {"source", s.Source}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s: required", f.key))
		}
	}
	if s.Created.IsZero() {
		errs = append(errs, errors.New("created: required (SOURCE_DATE_EPOCH)"))
	}
	return errors.Join(errs...)
}

// BinaryPath is where the binary sits in the image.
func (s Spec) BinaryPath() string { return "/usr/local/bin/" + s.Name }

// Image builds the image of spec for platform from the binary at binPath,
// after checking that it is a static executable for that platform.
func Image(spec Spec, platform v1.Platform, binPath string) (v1.Image, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("image spec %q: %w", spec.Name, err)
	}
	if err := CheckBinary(binPath, platform); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("reading the %s binary: %w", spec.Name, err)
	}
	base, err := baseLayer(spec.Created)
	if err != nil {
		return nil, err
	}
	app, err := binaryLayer(spec.BinaryPath(), bin, spec.Created)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: spec.Created.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "auditpipe images: base (passwd, group, /tmp, /home/nonroot)", Comment: "made from scratch"}},
		mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "auditpipe images: " + spec.BinaryPath(), Comment: "static Go binary"}},
	)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Variant = platform.Architecture, platform.OS, platform.Variant
	cf.Created = created
	cf.Author = "auditpipe"
	cf.Config = v1.Config{
		Entrypoint: []string{spec.BinaryPath()},
		User:       fmt.Sprintf("%d:%d", User, User),
		WorkingDir: "/home/nonroot",
		Env:        []string{"PATH=/usr/local/bin", "HOME=/home/nonroot"},
		Labels: map[string]string{
			LabelSource:   spec.Source,
			LabelVersion:  spec.Version,
			LabelRevision: spec.Revision,
			LabelTitle:    "auditpipe " + spec.Name,
			LabelCreated:  created.Format(time.RFC3339),
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the config: %w", err)
	}
	return img, nil
}

// Index builds the multi-platform image index of spec from one binary per
// platform, in the order given.
func Index(spec Spec, binaries []PlatformBinary) (v1.ImageIndex, error) {
	if len(binaries) == 0 {
		return nil, fmt.Errorf("image index %q: no platforms", spec.Name)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[string]bool{}
	for _, b := range binaries {
		p := b.Platform.String()
		if seen[p] {
			return nil, fmt.Errorf("image index %q: platform %s given twice", spec.Name, p)
		}
		seen[p] = true
		img, err := Image(spec, b.Platform, b.Path)
		if err != nil {
			return nil, err
		}
		plat := b.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform:    &plat,
			Annotations: map[string]string{LabelVersion: spec.Version, LabelRevision: spec.Revision, LabelSource: spec.Source},
		}})
	}
	return idx, nil
}

// PlatformBinary is a binary built for one platform.
type PlatformBinary struct {
	Platform v1.Platform
	Path     string
}
