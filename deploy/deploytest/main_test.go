//go:build deploytest

package deploytest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/deploy/images"
	"github.com/auditpipe/auditpipe/deploy/internal/podman"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
)

// root is the repository root.
const root = "../.."

var (
	// engine holds the loaded images in a store of its own.
	engine *podman.Engine
	// tag is the images' tag: the chart's appVersion.
	tag string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploytest:", err)
		code = 1
	}
	if err := chservertest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "deploytest: stopping the embedded ClickHouse:", err)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if os.Geteuid() != 0 {
		return 1, fmt.Errorf("run as root (podman with runc, hostPath volumes owned by the pods' groups)")
	}
	dir, err := os.MkdirTemp("", "deploytest-podman-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	if engine, err = podman.New(dir); err != nil {
		return 1, err
	}
	defer cleanUpPodman()
	if tag, err = images.AppVersion(root); err != nil {
		return 1, err
	}
	if err := loadImages(); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

// loadImages loads the linux/amd64 tarballs of `make images`.
func loadImages() error {
	dir := os.Getenv("AUDITPIPE_IMAGES")
	if dir == "" {
		dir = filepath.Join(root, "bin", "images")
	}
	for _, svc := range []string{"poller", "enricher", "loader"} {
		tar := filepath.Join(dir, svc+"-linux-amd64.tar")
		if _, err := os.Stat(tar); err != nil {
			return fmt.Errorf("%w: build the images first (make images IMAGE_PLATFORMS=linux/amd64)", err)
		}
		out, err := engine.Run(context.Background(), "load", "--quiet", "--input", tar)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "deploytest: %s\n", out)
	}
	return nil
}

// cleanUpPodman removes every pod and container of the private store.
func cleanUpPodman() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _ = engine.Run(ctx, "pod", "rm", "--all", "--force", "--time", "5")
	_, _ = engine.Run(ctx, "rm", "--all", "--force", "--time", "5")
}

// image is the reference of a service's image.
func image(svc string) string { return "auditpipe/" + svc + ":" + tag }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// readable makes dir (and its parents up to the temporary directory)
// traversable by the images' user, as a volume a kubelet mounts is.
func readable(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
}

// status returns the HTTP status of url ("" when it does not answer).
func status(url string) string {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Status
}

// query runs sql on the embedded ClickHouse and returns the trimmed answer.
func query(t *testing.T, chURL, sql string) string {
	t.Helper()
	resp, err := http.Post(chURL+"/", "text/plain", strings.NewReader(sql))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", sql, b)
	return strings.TrimSpace(string(b))
}
