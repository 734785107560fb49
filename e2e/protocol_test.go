package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// embeddedProtocol is the one protocol the embedded ClickHouse
// (pkg/dev/chserver) speaks, so the one every loader of this suite uses.
const embeddedProtocol = "http"

// TestLoaderRunsTheDefaultProtocol: the suite's loaders load rows over the
// loader's default ClickHouse protocol, the one the chart, compose and the
// example configuration use too. Nothing the suite hands the loader names a
// protocol (the example configuration here, the dev stack's environment in
// devstack's TestLoaderEnvLeavesTheProtocol), and the default must be the
// protocol the embedded engine speaks: if the default changed, this test says
// so, and every pipeline test would fail to load.
func TestLoaderRunsTheDefaultProtocol(t *testing.T) {
	path := filepath.Join("..", "deploy", "config", "loader.yaml")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var cfg struct {
		ClickHouse map[string]any `yaml:"clickhouse"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	assert.NotContains(t, cfg.ClickHouse, "protocol", "%s sets clickhouse.protocol: the suite would no longer run the default", path)

	out, err := exec.Command(filepath.Join(binDir, "loader"), "--check-config", "--config", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var effective struct {
		ClickHouse struct {
			Protocol string `yaml:"protocol"`
		} `yaml:"clickhouse"`
	}
	require.NoError(t, yaml.Unmarshal(out, &effective), "%s", out)
	assert.Equal(t, embeddedProtocol, effective.ClickHouse.Protocol,
		"the loader's default protocol is not the one the end-to-end suite runs (docs/loader.md, Protocol)")
}
