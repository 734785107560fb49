package images

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// VersionVar is the variable the build's version is written into.
const VersionVar = "github.com/auditpipe/auditpipe/pkg/service.Version"

// Build is one binary to compile.
type Build struct {
	// ModuleDir is the service's module directory, e.g. ../poller.
	ModuleDir string
	// Package is the main package inside it, e.g. ./cmd/poller.
	Package string
	// Platform is the target (linux/amd64, linux/arm64).
	Platform v1.Platform
	// Version is written into VersionVar.
	Version string
	// Output is the binary's path.
	Output string
	// Go is the go command (default "go").
	Go string
}

// Compile builds b as a static binary: CGO_ENABLED=0, -trimpath, symbols
// stripped, GOWORK=off (the module's own go.mod decides every version). The
// environment's GOFLAGS and caches are kept. It blocks until go build ends.
func Compile(ctx context.Context, b Build) error {
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	if err := os.MkdirAll(filepath.Dir(b.Output), 0o755); err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	out, err := filepath.Abs(b.Output)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", b.Output, err)
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath",
		"-ldflags", "-s -w -X "+VersionVar+"="+b.Version,
		"-o", out, b.Package)
	cmd.Dir = b.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOOS="+b.Platform.OS, "GOARCH="+b.Platform.Architecture)
	if b.Platform.Variant != "" && b.Platform.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(b.Platform.Variant, "v"))
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s in %s: %w\n%s", b.Package, b.Platform, b.ModuleDir, err, stderr.String())
	}
	return nil
}

// machines maps GOARCH to the ELF machine of its binaries.
var machines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// CheckBinary reports an error unless path is a statically linked ELF
// executable for platform (linux/amd64 or linux/arm64): an image with no
// libc and no loader runs nothing else.
func CheckBinary(path string, platform v1.Platform) error {
	if platform.OS != "linux" {
		return fmt.Errorf("platform %s: only linux images are built", platform)
	}
	want, ok := machines[platform.Architecture]
	if !ok {
		return fmt.Errorf("platform %s: unsupported architecture (want amd64 or arm64)", platform)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("binary %s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	var errs []error
	if f.Machine != want {
		errs = append(errs, fmt.Errorf("binary %s is for %s, the image is %s", path, f.Machine, platform))
	}
	if f.Type != elf.ET_EXEC {
		errs = append(errs, fmt.Errorf("binary %s is %s, want a static executable (ET_EXEC; build with CGO_ENABLED=0)", path, f.Type))
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			errs = append(errs, fmt.Errorf("binary %s is dynamically linked: build it with CGO_ENABLED=0", path))
			break
		}
	}
	return errors.Join(errs...)
}
