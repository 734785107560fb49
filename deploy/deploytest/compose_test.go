//go:build deploytest

package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestComposeWorksWithPodmanCompose: podman-compose turns the compose
// project into podman commands (--dry-run: the images of Kafka, the
// registry, ClickHouse, Prometheus and Grafana cannot be pulled here), its
// secrets included; it refuses secrets taken from the environment.
// PODMAN_COMPOSE is the directory podman-compose was installed into (pip
// --target; make deploy-test does it).
func TestComposeWorksWithPodmanCompose(t *testing.T) {
	lib := os.Getenv("PODMAN_COMPOSE")
	require.NotEmpty(t, lib, "PODMAN_COMPOSE: the directory podman-compose is installed in (pip install --target DIR podman-compose)")
	secrets := t.TempDir()
	for _, name := range []string{"openai_admin_key", "clickhouse_password", "grafana_admin_password"} {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, name), []byte("deploytest-"+name), 0o644))
	}
	cmd := exec.Command("python3", "-m", "podman_compose", "--dry-run", "up", "--detach")
	cmd.Dir = filepath.Join(root, "deploy", "compose")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+lib, "AUDITPIPE_VERSION="+tag, "AUDITPIPE_SECRETS_DIR="+secrets,
		"CONTAINERS_CONF="+filepath.Join(engine.Dir, "containers.conf"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "podman-compose --dry-run up:\n%s", out)
}
