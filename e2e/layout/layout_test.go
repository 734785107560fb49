package layout_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/auditpipe/auditpipe/"

// TestServiceBinariesLinkNoDevInfrastructure lists, with go list -deps,
// every package each service binary links, and fails on any package of
// pkg/dev (the embedded ClickHouse, the simulator, the synthetic GeoIP,
// the Kafka fakes): development infrastructure never ships.
func TestServiceBinariesLinkNoDevInfrastructure(t *testing.T) {
	for _, svc := range []string{"poller", "enricher", "loader"} {
		t.Run(svc, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "./cmd/"+svc)
			cmd.Dir = filepath.Join("..", "..", svc)
			cmd.Env = append(cmd.Environ(), "GOWORK=off")
			out, err := cmd.Output()
			require.NoError(t, err, "go list -deps %s: %s", svc, stderr(err))
			deps := strings.Fields(string(out))
			require.Contains(t, deps, module+svc+"/cmd/"+svc, "the binary itself is listed")
			require.Contains(t, deps, module+"pkg/contract", "the list reaches the shared libraries")
			var dev []string
			for _, d := range deps {
				if strings.HasPrefix(d, module+"pkg/dev/") || strings.HasPrefix(d, module+"e2e/") {
					dev = append(dev, d)
				}
			}
			assert.Empty(t, dev, "%s links development infrastructure", svc)
		})
	}
}

func stderr(err error) string {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return string(ee.Stderr)
	}
	return ""
}
