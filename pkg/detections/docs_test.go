package detections_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// TestDocs keeps docs/detections.md true: its rule table lists every rule
// with its severity and technique, every SQL statement on the page runs,
// and the Grafana alert rule is valid YAML whose query runs.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "detections.md"))
	require.NoError(t, err)
	text := string(doc)

	rules, err := detections.Rules()
	require.NoError(t, err)
	rows := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([A-Z]+) \\| (T[0-9.]+) ([^|]+) \\|").FindAllStringSubmatch(text, -1)
	table := map[string][]string{}
	for _, r := range rows {
		table[r[1]] = []string{r[2], r[3], strings.TrimSpace(r[4])}
	}
	require.Len(t, table, len(rules), "one row per rule in the rules table")
	for _, r := range rules {
		assert.Equal(t, []string{string(r.Severity), r.MITRE.ID, r.MITRE.Name}, table[r.ID], "row of %s", r.ID)
	}

	e := newEnv(t)
	e.insert("docs", stuffing("d", 5, 0)...)
	e.run("credential_stuffing")
	names := strings.NewReplacer("default_detections", e.opts.DetectionsDatabase)
	for _, block := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(text, -1) {
		stmts, err := schema.SplitStatements(names.Replace(block[1]))
		require.NoError(t, err)
		for _, s := range stmts {
			out, err := httpQuery(e.url, s, url.Values{"param_since": {"2000-01-01 00:00:00"}})
			require.NoError(t, err, s)
			if strings.Contains(s, "FORMAT JSONEachRow") {
				assert.Contains(t, out, `"entity":"victim@example.com"`, "the export returns the finding")
			}
		}
	}

	yamlBlock := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(text)
	require.NotNil(t, yamlBlock, "the Grafana alert rule")
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Groups     []struct {
			Rules []struct {
				UID       string `yaml:"uid"`
				Condition string `yaml:"condition"`
				Data      []struct {
					RefID string `yaml:"refId"`
					Model struct {
						RawSQL string `yaml:"rawSql"`
					} `yaml:"model"`
				} `yaml:"data"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(yamlBlock[1]), &prov))
	require.Equal(t, 1, prov.APIVersion)
	rule := prov.Groups[0].Rules[0]
	assert.Equal(t, "B", rule.Condition)
	out, err := httpQuery(e.url, names.Replace(strings.Replace(rule.Data[0].Model.RawSQL, "INTERVAL 5 MINUTE", "INTERVAL 1 DAY", 1)), nil)
	require.NoError(t, err)
	assert.Equal(t, "credential_stuffing\t1\n", out, "one series per rule")
}

// httpQuery runs one statement over the HTTP interface and returns the body.
func httpQuery(serverURL, query string, params url.Values) (string, error) {
	resp, err := http.Post(serverURL+"/?"+params.Encode(), "text/plain", strings.NewReader(query))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &httpError{resp.Status, string(b)}
	}
	return string(b), nil
}

type httpError struct{ status, body string }

func (e *httpError) Error() string { return e.status + ": " + e.body }
