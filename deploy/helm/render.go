package helm

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
)

// Render renders the chart in dir with values over its defaults as `helm
// template` does (schema validation included) for a release in namespace,
// and returns the rendered files by name.
func Render(dir, release, namespace string, values map[string]any) (map[string]string, error) {
	c, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading the chart %s: %w", dir, err)
	}
	opts := common.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}
	vals, err := util.ToRenderValuesWithSchemaValidation(c, values, opts, common.DefaultCapabilities, false)
	if err != nil {
		return nil, err
	}
	return engine.Render(c, vals)
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// Documents splits the rendered manifests (files ending in .yaml) into
// their YAML documents, by file name then position; documents holding only
// comments are left out.
func Documents(files map[string]string) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		if strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		for _, doc := range docSep.Split(files[n], -1) {
			if strings.TrimSpace(stripComments(doc)) != "" {
				out = append(out, doc)
			}
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
