// Package podman runs the podman CLI against a store and configuration of
// its own: images, containers and pods live under one directory, so that
// tests neither see nor disturb the machine's podman (or each other), and
// are gone with it.
//
// The containers.conf written there is what Debian's podman 4.3 needs on
// these machines: runc (crun fails on setrlimit and on hybrid cgroups) and
// explicit ulimits, cgroupfs and file events (no systemd).
package podman

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ContainersConf is the containers.conf an Engine uses.
const ContainersConf = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
# Debian installs catatonit, which builds the pods' pause image, in /usr/bin.
helper_binaries_dir = ["/usr/libexec/podman", "/usr/lib/podman", "/usr/bin"]
`

// Engine is podman with a private store under Dir.
type Engine struct {
	Dir string
}

// New writes the configuration into dir (created) and returns the Engine.
func New(dir string) (*Engine, error) {
	if _, err := exec.LookPath("podman"); err != nil {
		return nil, fmt.Errorf("podman is not installed (apt-get install podman runc catatonit; .ci/run does it): %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	conf := ContainersConf + fmt.Sprintf("tmp_dir = %q\n", filepath.Join(dir, "tmp"))
	if err := os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return &Engine{Dir: dir}, nil
}

// Command returns the podman command for args.
func (e *Engine) Command(ctx context.Context, args ...string) *exec.Cmd {
	all := append([]string{"--root", filepath.Join(e.Dir, "storage"), "--runroot", filepath.Join(e.Dir, "run")}, args...)
	cmd := exec.CommandContext(ctx, "podman", all...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(e.Dir, "containers.conf"))
	return cmd
}

// Run runs podman with args and returns its standard output; the error
// carries the standard error.
func (e *Engine) Run(ctx context.Context, args ...string) (string, error) {
	cmd := e.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Inspect returns the value of the Go template format for a container.
func (e *Engine) Inspect(ctx context.Context, container, format string) (string, error) {
	return e.Run(ctx, "inspect", "--type", "container", "--format", format, container)
}
