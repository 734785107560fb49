package grafana_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/auditpipe/auditpipe/deploy/grafana"
)

// provisioned reads the data sources file as Grafana does.
func provisioned(t *testing.T) map[string]string {
	t.Helper()
	b, err := grafana.Files.ReadFile("provisioning/datasources/auditpipe.yaml")
	require.NoError(t, err)
	var f struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			UID  string `json:"uid"`
			Type string `json:"type"`
		} `json:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	require.Equal(t, 1, f.APIVersion)
	out := map[string]string{}
	for _, d := range f.Datasources {
		out[d.UID] = d.Type
	}
	return out
}

func TestProvisioningNamesTheDashboardsDataSources(t *testing.T) {
	ds := provisioned(t)
	assert.Equal(t, map[string]string{grafana.ClickHouseUID: grafana.ClickHouseType, grafana.PrometheusUID: "prometheus"}, ds)

	b, err := grafana.Files.ReadFile("provisioning/dashboards/auditpipe.yaml")
	require.NoError(t, err)
	var p struct {
		Providers []struct {
			Type    string `json:"type"`
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	require.NoError(t, yaml.Unmarshal(b, &p))
	require.Len(t, p.Providers, 1)
	assert.Equal(t, "file", p.Providers[0].Type)
	assert.Equal(t, "/var/lib/grafana/dashboards/auditpipe", p.Providers[0].Options.Path, "where deploy/compose mounts ./dashboards")
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// TestDashboardsAreConsistent checks what Grafana would otherwise only show
// at run time: unique ids, every panel on a provisioned data source, every
// variable a query uses defined, ClickHouse queries in the plugin's formats
// (time series for time-series panels, table for the others), and every
// PromQL expression parses and names its metrics.
func TestDashboardsAreConsistent(t *testing.T) {
	ds := provisioned(t)
	dashboards, err := grafana.Dashboards()
	require.NoError(t, err)
	require.Len(t, dashboards, 2)
	uids := map[string]bool{}
	for _, d := range dashboards {
		t.Run(d.File, func(t *testing.T) {
			assert.False(t, uids[d.UID], "uid %s is unique", d.UID)
			uids[d.UID] = true
			vars := map[string]bool{}
			for _, v := range d.Templating.List {
				vars[v.Name] = true
				if v.Type == "query" {
					require.NotNil(t, v.Datasource, v.Name)
					assert.Equal(t, grafana.ClickHouseUID, v.Datasource.UID, v.Name)
					assert.True(t, v.Multi && v.IncludeAll, "%s: multi-value with All, as $__conditionalAll expects", v.Name)
				}
			}
			ids := map[int]bool{}
			for _, p := range d.Panels {
				assert.False(t, ids[p.ID], "panel id %d is unique", p.ID)
				ids[p.ID] = true
			}
			for _, p := range d.Queries() {
				require.NotNil(t, p.Datasource, p.Title)
				assert.Equal(t, p.Datasource.Type, ds[p.Datasource.UID], "%s: data source %s is provisioned", p.Title, p.Datasource.UID)
				for _, tg := range p.Targets {
					require.NotNil(t, tg.Datasource, p.Title)
					assert.Equal(t, p.Datasource.UID, tg.Datasource.UID, p.Title)
					query := tg.RawSQL + tg.Expr
					for _, m := range varRef.FindAllStringSubmatch(query, -1) {
						if !strings.HasPrefix(m[1], "__") {
							assert.True(t, vars[m[1]], "%s uses undefined variable $%s", p.Title, m[1])
						}
					}
					switch p.Datasource.UID {
					case grafana.ClickHouseUID:
						require.NotNil(t, tg.Format, "%s: format set", p.Title)
						want := grafana.FormatTable
						if p.Type == "timeseries" {
							want = grafana.FormatTimeSeries
						}
						assert.Equal(t, want, *tg.Format, "%s: format for a %s panel", p.Title, p.Type)
						assert.NotEmpty(t, tg.RawSQL, p.Title)
					case grafana.PrometheusUID:
						names, err := grafana.ParsePromQL(tg.Expr)
						if assert.NoError(t, err, "%s: %s", p.Title, tg.Expr) {
							for _, n := range names {
								assert.True(t, strings.HasPrefix(n, "auditpipe_"), "%s: %s is not an auditpipe metric", p.Title, n)
							}
						}
					}
				}
			}
		})
	}
}

// TestAuditDashboardCoversTheIssue lists what the audit dashboard must show.
func TestAuditDashboardCoversTheIssue(t *testing.T) {
	dashboards, err := grafana.Dashboards()
	require.NoError(t, err)
	titles := map[string]map[string]string{} // dashboard -> panel title -> type
	vars := map[string]bool{}
	for _, d := range dashboards {
		titles[d.Title] = map[string]string{}
		for _, p := range d.Queries() {
			titles[d.Title][p.Title] = p.Type
		}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
		}
	}
	for _, v := range []string{"workspace", "source", "project", "actor", "event_type"} {
		assert.True(t, vars[v], "template variable %s", v)
	}
	for title, typ := range map[string]string{
		"Events over time by type": "timeseries", "Logins succeeded and failed": "timeseries",
		"Failed logins by user": "table", "Failed logins by IP": "table", "Sessions on the map": "geomap",
		"Top countries": "bargauge", "Top ASNs": "bargauge", "Top ISPs": "bargauge",
		"API-key lifecycle": "timeseries", "API-key scopes granted": "table",
		"Admin and security-configuration changes": "timeseries", "Projects and service accounts": "timeseries",
		"Read-only and changing events": "piechart", "Latest events": "table", "Detection findings": "table",
		// Inventory and posture (docs/inventory.md).
		"API keys by days since last use": "bargauge", "Posture findings": "table", "Audit gaps": "table",
		"Inventory changes by kind": "timeseries",
	} {
		assert.Equal(t, typ, titles["OpenAI audit log"][title], "audit log: %s", title)
	}
	for _, title := range []string{
		"Events/s per source", "Watermark lag per source", "API latency per source", "429s and errors",
		"Enricher in and out", "Dead letters by reason", "GeoIP hit rate", "GeoIP database age",
		"Loader rows/s", "Insert latency", "Consumer lag per group", "Event → row latency",
	} {
		assert.Contains(t, titles["auditpipe pipeline"], title, "pipeline")
	}
}
