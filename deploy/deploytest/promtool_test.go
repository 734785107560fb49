//go:build deploytest

package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAlertRulesPassPromtool runs Prometheus's own checker on the chart's
// alert rules (the file the PrometheusRule and the compose stack's
// Prometheus both load): PROMTOOL, from Debian's prometheus package.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		promtool = "promtool"
	}
	path, err := exec.LookPath(promtool)
	require.NoError(t, err, "promtool (Debian's prometheus package; make deploy-test unpacks it)")
	rules := filepath.Join(chartDir, "files", "alerts.yaml")
	out, err := exec.Command(path, "check", "rules", rules).CombinedOutput()
	require.NoError(t, err, "promtool check rules %s:\n%s", rules, out)
	assert.Contains(t, string(out), "SUCCESS")
	t.Logf("%s", out)
}
