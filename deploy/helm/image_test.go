package helm

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImagesCarryTheChartsTag: `make images` (cmd/images without -version,
// as the Makefile runs it) tags the images with the tag the chart deploys
// by default, so an install with the default values finds them.
func TestImagesCarryTheChartsTag(t *testing.T) {
	out := t.TempDir()
	cmd := exec.CommandContext(context.Background(), "go", "run", "./cmd/images",
		"-root", "..", "-out", out, "-services", "poller", "-platforms", "linux/amd64")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	m, err := tarball.LoadManifest(func() (f io.ReadCloser, err error) {
		return os.Open(filepath.Join(out, "poller-linux-amd64.tar"))
	})
	require.NoError(t, err)
	require.Len(t, m, 1)

	deployed := render(t, withSource).Deployments[fullName("poller")].Spec.Template.Spec.Containers[0].Image
	assert.Equal(t, []string{deployed}, m[0].RepoTags, "make images tags what the chart deploys by default")
}
