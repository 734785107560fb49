// Package servicebin builds the service binaries for the host and runs
// them the way a deployment hands them over (arguments, environment and
// files), to check configurations (--check-config) and to scrape the
// metrics a running service exports.
package servicebin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/auditpipe/auditpipe/deploy/images"
)

// Services are the service names, which are also their module directories
// and binary names.
var Services = []string{"poller", "enricher", "loader"}

// Binaries are the service binaries in Dir.
type Binaries struct{ Dir string }

// Build compiles every service of the repository at root into dir, for the
// host, as `make images` compiles them. It blocks until all are built.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	for _, svc := range Services {
		err := images.Compile(ctx, images.Build{
			ModuleDir: filepath.Join(root, svc),
			Package:   "./cmd/" + svc,
			Platform:  v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
			Version:   "test",
			Output:    filepath.Join(dir, svc),
		})
		if err != nil {
			return Binaries{}, err
		}
	}
	return Binaries{Dir: dir}, nil
}

// Path returns the binary of service.
func (b Binaries) Path(service string) string { return filepath.Join(b.Dir, service) }

// Invocation is how a deployment starts a service: the arguments after the
// entrypoint, the whole environment, and the working directory.
type Invocation struct {
	Args []string
	Env  []string
	Dir  string
}

// CheckConfig runs the service with --check-config added to inv's
// arguments and returns its output; the error holds the output when the
// service rejects the configuration.
func (b Binaries) CheckConfig(ctx context.Context, service string, inv Invocation) (string, error) {
	cmd := exec.CommandContext(ctx, b.Path(service), append(append([]string(nil), inv.Args...), "--check-config")...)
	cmd.Env, cmd.Dir = inv.Env, inv.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s --check-config %s: %w\n%s", service, strings.Join(inv.Args, " "), err, out)
	}
	return string(out), nil
}

// Process is a running service.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the service with inv; its output goes to out (which must be
// safe for concurrent writes). Stop it with Stop.
func (b Binaries) Start(service string, inv Invocation, out io.Writer) (*Process, error) {
	cmd := exec.Command(b.Path(service), inv.Args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = inv.Env, inv.Dir, out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", service, err)
	}
	p := &Process{Name: service, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills it. It returns the exit error (nil for a clean stop).
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s: killed", p.Name, timeout)
	}
}

// Run runs the service to completion (a one-shot step such as a
// migrations Job's container) and returns its output.
func (b Binaries) Run(ctx context.Context, service string, inv Invocation) (string, error) {
	cmd := exec.CommandContext(ctx, b.Path(service), inv.Args...)
	cmd.Env, cmd.Dir = inv.Env, inv.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", service, strings.Join(inv.Args, " "), err, out)
	}
	return string(out), nil
}

// MetricNames scrapes the Prometheus text exposition at url and returns
// every sample name it holds (histograms as _bucket, _sum and _count, as
// PromQL sees them) and every family name.
func MetricNames(ctx context.Context, url string) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	return parseNames(body)
}

func parseNames(body []byte) (map[string]bool, error) {
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "# TYPE "):
			if f := strings.Fields(line); len(f) >= 3 {
				names[f[2]] = true
			}
		case strings.HasPrefix(line, "#"):
		default:
			end := strings.IndexAny(line, "{ ")
			if end <= 0 {
				return nil, fmt.Errorf("malformed sample line %q", line)
			}
			names[line[:end]] = true
		}
	}
	if len(names) == 0 {
		return nil, errors.New("no metrics in the exposition")
	}
	return names, sc.Err()
}

// SyncWriter serializes writes to W, so several processes can share it.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}
