package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// ChartPath is the Helm chart's Chart.yaml, relative to the repository root:
// its appVersion is the one release version, the tag `make images` gives
// the images and the tag the chart deploys by default.
const ChartPath = "deploy/helm/auditpipe/Chart.yaml"

// AppVersion reads the appVersion of the Chart.yaml under root.
func AppVersion(root string) (string, error) {
	path := filepath.Join(root, ChartPath)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the release version: %w", err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		return "", fmt.Errorf("reading the release version from %s: %w", path, err)
	}
	if chart.AppVersion == "" {
		return "", errors.New(path + ": appVersion is empty: it is the images' tag")
	}
	return chart.AppVersion, nil
}
