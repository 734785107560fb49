// Package grafana holds the Grafana side of auditpipe: the provisioning
// files (data sources with fixed uids, a dashboards provider) and the two
// dashboards, "OpenAI audit log" (ClickHouse, through the
// grafana-clickhouse-datasource plugin) and "auditpipe pipeline"
// (Prometheus). The files are the product; this package embeds them and
// reads them for the tests (docs/dashboards.md).
package grafana

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// Files are the dashboards (dashboards/*.json) and the provisioning files
// (provisioning/**.yaml).
//
//go:embed dashboards/*.json provisioning/datasources/*.yaml provisioning/dashboards/*.yaml
var Files embed.FS

// The data source uids the dashboards refer to (provisioning/datasources).
const (
	ClickHouseUID = "auditpipe-clickhouse"
	PrometheusUID = "auditpipe-prometheus"
	// ClickHouseType is the plugin id of the official ClickHouse data source.
	ClickHouseType = "grafana-clickhouse-datasource"
)

// Dashboard is the part of a dashboard's JSON model the tests read.
type Dashboard struct {
	File       string     `json:"-"`
	UID        string     `json:"uid"`
	Title      string     `json:"title"`
	Panels     []Panel    `json:"panels"`
	Templating Templating `json:"templating"`
}

// Templating holds the dashboard's template variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a template variable.
type Variable struct {
	Type       string      `json:"type"`
	Name       string      `json:"name"`
	Query      any         `json:"query"` // a string for query and textbox variables
	Datasource *Datasource `json:"datasource"`
	Multi      bool        `json:"multi"`
	IncludeAll bool        `json:"includeAll"`
}

// Datasource references a data source by type and uid.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is a panel (or a row, Type "row").
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
	Options    any         `json:"options"`
}

// Target is one query of a panel: RawSQL and Format for ClickHouse (the
// plugin's formats: 0 time series, 1 table), Expr for Prometheus.
type Target struct {
	RefID      string      `json:"refId"`
	Datasource *Datasource `json:"datasource"`
	RawSQL     string      `json:"rawSql"`
	Format     *int        `json:"format"`
	Expr       string      `json:"expr"`
}

// Plugin formats of a ClickHouse query (sqlutil.FormatQueryOption).
const (
	FormatTimeSeries = 0
	FormatTable      = 1
)

// Dashboards parses every dashboard in Files, sorted by file name.
func Dashboards() ([]Dashboard, error) {
	names, err := fs.Glob(Files, "dashboards/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Dashboard
	for _, name := range names {
		b, err := Files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var d Dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		d.File = path.Base(name)
		out = append(out, d)
	}
	return out, nil
}

// Queries returns the panels that query data (rows and panels without
// targets are left out).
func (d Dashboard) Queries() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// grafanaRange are Grafana's built-in range variables in PromQL, with the
// values the tests substitute (Grafana substitutes durations).
var grafanaRange = strings.NewReplacer(
	"$__rate_interval", "1m", "${__rate_interval}", "1m",
	"$__interval", "30s", "${__interval}", "30s",
	"$__range", "1h", "${__range}", "1h",
)

// ParsePromQL substitutes Grafana's range variables as Grafana does and
// parses expr as Prometheus does. It returns the metric names expr selects;
// every selector must name its metric.
func ParsePromQL(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaRange.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	var nameErr error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				nameErr = fmt.Errorf("selector %s names no metric", vs)
			}
			names = append(names, histogramFamily(vs.Name))
		}
		return nil
	})
	return names, nameErr
}

var histogramSuffix = regexp.MustCompile(`_(bucket|sum|count)$`)

// histogramFamily returns the family a histogram series belongs to
// (x_bucket → x); other names are returned unchanged. The /metrics
// exposition lists series names, so both forms are looked up.
func histogramFamily(name string) string {
	return histogramSuffix.ReplaceAllString(name, "")
}

// PromQLMetrics returns, for every metric any Prometheus panel of the
// dashboards selects, the panels ("dashboard / panel") that use it.
func PromQLMetrics() (map[string][]string, error) {
	ds, err := Dashboards()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, d := range ds {
		for _, p := range d.Queries() {
			for _, t := range p.Targets {
				if t.Expr == "" {
					continue
				}
				names, err := ParsePromQL(t.Expr)
				if err != nil {
					return nil, fmt.Errorf("%s / %s (%s): %w", d.Title, p.Title, t.RefID, err)
				}
				for _, n := range names {
					out[n] = append(out[n], d.Title+" / "+p.Title)
				}
			}
		}
	}
	return out, nil
}
