package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
	"github.com/auditpipe/auditpipe/pkg/inventory"
)

// dashboard is the part of a Grafana dashboard's JSON model the panel test
// reads (deploy/grafana/dashboards).
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Interval   string `json:"interval"` // the panel's minimum interval
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RawSQL string `json:"rawSql"`
			Format int    `json:"format"`
		} `json:"targets"`
	} `json:"panels"`
}

const clickhouseUID = "auditpipe-clickhouse"

// loadPipelineForDashboards runs the pipeline over a day of simulated
// events, every event type and every attack scenario, waits until all of it
// is in ClickHouse and runs every detection once, so that each panel has
// something to show.
func loadPipelineForDashboards(t *testing.T) *pipeline {
	t.Helper()
	var inventoryRecords []inventory.Record
	var droppedKey string
	p := startPipeline(t, pipelineOptions{
		sim: openaisim.Config{Seed: 17, Backlog: 600, BacklogSpan: 20 * time.Hour},
		seed: func(sim *openaisim.Simulator) {
			allTypesBacklog(sim)
			_, err := sim.Attack(openaisim.AttackAll, time.Now().Add(-time.Minute))
			require.NoError(t, err)
			inventoryRecords, droppedKey = inventorySnapshots(t, sim)
		},
		extraEnv: map[string][]string{"poller": sourceEnv()},
	})
	n := len(p.sim.GroundTruth())
	p.waitCount("SELECT count() FROM openai_audit_events", n, 3*time.Minute)
	// The inventory, as the loader will insert it (its collector is not
	// written yet): three snapshots of the simulator's inventory.
	changes, snaps, err := openaisimtest.InventoryInserts(p.db, inventoryRecords)
	require.NoError(t, err)
	p.mustQuery(changes)
	p.mustQuery(snaps)
	recount := p.db + "_rollups.recount_hours"
	p.mustQuery("SYSTEM REFRESH VIEW " + recount)
	p.mustQuery("SYSTEM WAIT VIEW " + recount)
	p.waitCount("SELECT sum(events) FROM openai_audit_counts", n, time.Minute)
	det := p.db + "_detections"
	rules, err := detections.Rules()
	require.NoError(t, err)
	p.waitCount("SELECT count() FROM system.tables WHERE database = '"+det+"' AND engine = 'MaterializedView'", len(rules), time.Minute)
	start := time.Now()
	for _, r := range p.rows("SELECT name FROM system.tables WHERE database = '" + det + "' AND engine = 'MaterializedView' ORDER BY name") {
		p.mustQuery("SYSTEM REFRESH VIEW " + det + "." + r["name"].(string))
	}
	for _, r := range p.rows("SELECT name FROM system.tables WHERE database = '" + det + "' AND engine = 'MaterializedView' ORDER BY name") {
		p.mustQuery("SYSTEM WAIT VIEW " + det + "." + r["name"].(string))
	}
	t.Logf("%d events loaded; detections refreshed in %s", n, time.Since(start).Round(time.Millisecond))
	// The audit log went through the real poller and enricher: audit_gap
	// finds the dropped event's key, and nothing else.
	assert.Equal(t, "project_api_key/"+droppedKey+"\tappeared\n",
		p.mustQuery("SELECT entity, details['change'] FROM "+det+".openai_audit_detections FINAL WHERE rule = 'audit_gap' ORDER BY entity")+"\n")
	return p
}

// inventorySnapshots snapshots the simulator's inventory three times, as
// the poller's collector will, and returns the change records: a baseline
// three hours ago, then changes through audited events and one dropped on
// purpose (an audit gap), a snapshot two hours ago, and one ten minutes ago
// (a current inventory for the posture rules), and the dropped key's id.
// The source is the one sourceEnv configures.
func inventorySnapshots(t *testing.T, sim *openaisim.Simulator) ([]inventory.Record, string) {
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	var out []inventory.Record
	var prev inventory.Hashes
	snap := func(id string, at time.Time) {
		s := openaisimtest.ListInventory(t.Context(), srv.Client(), srv.URL+"/v1", "sk-admin-e2e")
		for k, l := range s.Kinds {
			require.NoError(t, l.Err, "listing %s", k)
		}
		s.SourceID, s.WorkspaceID, s.ID, s.At, s.FinishedAt = e2eSource, e2eWorkspace, id, at, at.Add(time.Second)
		recs, next, err := inventory.Diff(prev, s)
		require.NoError(t, err)
		out, prev = append(out, recs...), next
	}
	now := time.Now().Truncate(time.Second)
	snap("s1", now.Add(-3*time.Hour))
	for _, typ := range []string{"api_key.created", "user.deleted", "invite.sent", "certificate.created", "project.created"} {
		sim.GenerateSpec(openaisim.Spec{N: 1, Type: typ, EffectiveAt: now.Add(-150 * time.Minute)})
	}
	dropped := sim.DropAudit(openaisim.Spec{N: 1, Type: "api_key.created", EffectiveAt: now.Add(-150 * time.Minute)})
	require.Len(t, dropped, 1)
	var payload struct {
		Created struct {
			ID string `json:"id"`
		} `json:"api_key.created"`
	}
	require.NoError(t, json.Unmarshal(dropped[0].Raw, &payload))
	snap("s2", now.Add(-2*time.Hour))
	snap("s3", now.Add(-10*time.Minute))
	return out, payload.Created.ID
}

// TestDashboards loads a pipeline once and checks what users look at: every
// ClickHouse panel of the Grafana dashboards, expanded as Grafana and the
// plugin expand it, and every chart of ClickHouse's /dashboard page, run on
// the engine over the loaded data; then the /dashboard page itself in a
// headless browser.
func TestDashboards(t *testing.T) {
	p := loadPipelineForDashboards(t)
	t.Run("grafana panels", func(t *testing.T) { checkGrafanaPanels(t, p) })
	t.Run("clickhouse charts", func(t *testing.T) { checkClickHouseCharts(t, p) })
	t.Run("browser", func(t *testing.T) { checkChartsInBrowser(t, p) })
}

func checkGrafanaPanels(t *testing.T, p *pipeline) {
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "dashboards", "openai-audit-log.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))

	now := time.Now()
	g := grafanaQuery{from: now.Add(-24 * time.Hour), to: now, interval: time.Minute, vars: map[string][]string{"database": {p.db}}}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			g.vars[v.Name] = []string{allValue}
		}
	}
	// Every variable's query, with All selected elsewhere; the first value
	// of each is the specific selection of the second pass.
	specific := grafanaQuery{from: g.from, to: g.to, interval: g.interval, vars: map[string][]string{"database": {p.db}}}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		res := runPanelSQL(t, p, g, v.Query.(string))
		require.NotEmpty(t, res.Data, "variable %s has values", v.Name)
		specific.vars[v.Name] = []string{fmt.Sprint(res.Data[0][0])}
	}
	t.Logf("specific selection: %v", specific.vars)

	var timings []time.Duration
	checked := 0
	for _, panel := range d.Panels {
		if panel.Datasource == nil || panel.Datasource.UID != clickhouseUID {
			continue
		}
		g, specific := g, specific
		if panel.Interval != "" {
			// Grafana never goes below the panel's minimum interval.
			min, err := time.ParseDuration(panel.Interval)
			require.NoError(t, err, panel.Title)
			g.interval, specific.interval = max(g.interval, min), max(specific.interval, min)
		}
		for _, tg := range panel.Targets {
			checked++
			res := runPanelSQL(t, p, g, tg.RawSQL)
			timings = append(timings, res.elapsed)
			t.Logf("%-45s %-10s %4d rows %6.1f ms", panel.Title, panel.Type, len(res.Data), float64(res.elapsed.Microseconds())/1000)
			if assert.NoError(t, res.shape(panel.Type), panel.Title) {
				assert.NotEmpty(t, res.Data, "%s: the loaded day shows something", panel.Title)
			}
			// A specific selection runs the other branch of every
			// $__conditionalAll; it may legitimately match nothing.
			sres := runPanelSQL(t, p, specific, tg.RawSQL)
			assert.NoError(t, sres.shape(panel.Type), "%s with a specific selection", panel.Title)
		}
	}
	assert.GreaterOrEqual(t, checked, 20)

	// The counts and the events agree: over a week (every loaded event),
	// the Events stat reads the hourly counts with All actors and the
	// events when an actor is selected; both count each event once.
	week := grafanaQuery{from: now.Add(-7 * 24 * time.Hour), to: now.Add(time.Hour), interval: time.Hour, vars: g.vars}
	for _, panel := range d.Panels {
		if panel.Title != "Events" {
			continue
		}
		res := runPanelSQL(t, p, week, panel.Targets[0].RawSQL)
		assert.Equal(t, fmt.Sprint(len(p.sim.GroundTruth())), fmt.Sprint(res.Data[0][0]), "events counted from the hourly counts")
		perActor := map[string]float64{}
		for _, r := range p.rows("SELECT actorName, count() AS n FROM openai_audit_events GROUP BY actorName") {
			perActor[r["actorName"].(string)] = toFloat(r["n"])
		}
		for _, actor := range []string{specific.vars["actor"][0]} {
			one := week
			one.vars = map[string][]string{}
			for k, v := range g.vars {
				one.vars[k] = v
			}
			one.vars["actor"] = []string{actor}
			res := runPanelSQL(t, p, one, panel.Targets[0].RawSQL)
			assert.Equal(t, perActor[actor], toFloat(res.Data[0][0]), "events of %s, from the events", actor)
		}
	}
	slices.Sort(timings)
	t.Logf("%d panel queries over %d events: median %s, max %s", len(timings), len(p.sim.GroundTruth()), timings[len(timings)/2], timings[len(timings)-1])
}

// panelResult is a FORMAT JSONCompact answer.
type panelResult struct {
	Meta []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"meta"`
	Data    [][]any `json:"data"`
	elapsed time.Duration
}

func runPanelSQL(t *testing.T, p *pipeline, g grafanaQuery, sql string) panelResult {
	t.Helper()
	q, err := g.expand(sql)
	require.NoError(t, err, sql)
	start := time.Now()
	body, err := p.queryWith(q, url.Values{"default_format": {"JSONCompact"}, "output_format_json_quote_64bit_integers": {"0"}})
	elapsed := time.Since(start)
	require.NoError(t, err, q)
	var res panelResult
	require.NoError(t, json.Unmarshal([]byte(body), &res), q)
	res.elapsed = elapsed
	return res
}

func isTimeType(t string) bool {
	return strings.HasPrefix(t, "DateTime") || t == "Date" || t == "Date32"
}

func isNumberType(t string) bool {
	for _, p := range []string{"UInt", "Int", "Float", "Decimal"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// shape checks the columns (and for time series the order) a panel type
// needs from the plugin's frames.
func (r panelResult) shape(panel string) error {
	var times, numbers, strs []int
	for i, m := range r.Meta {
		switch {
		case isTimeType(m.Type):
			times = append(times, i)
		case isNumberType(m.Type):
			numbers = append(numbers, i)
		case m.Type == "String" || m.Type == "LowCardinality(String)":
			strs = append(strs, i)
		}
	}
	switch panel {
	case "timeseries":
		// sqlutil's long-to-wide conversion: one time column, sorted
		// ascending, numeric values, string columns become labels.
		if len(times) != 1 || len(numbers) == 0 || len(times)+len(numbers)+len(strs) != len(r.Meta) {
			return fmt.Errorf("a time series needs one time column, numbers and string labels; got %v", r.Meta)
		}
		col := times[0]
		if !sort.SliceIsSorted(r.Data, func(i, j int) bool { return fmt.Sprint(r.Data[i][col]) < fmt.Sprint(r.Data[j][col]) }) {
			return fmt.Errorf("a long time series must be sorted by time ascending")
		}
	case "geomap":
		names := map[string]string{}
		for _, m := range r.Meta {
			names[m.Name] = m.Type
		}
		if !isNumberType(names["latitude"]) || !isNumberType(names["longitude"]) {
			return fmt.Errorf("a geomap needs numeric latitude and longitude columns; got %v", r.Meta)
		}
	case "stat", "bargauge", "piechart":
		if len(numbers) == 0 {
			return fmt.Errorf("a %s needs a numeric column; got %v", panel, r.Meta)
		}
	case "table":
		if len(r.Meta) == 0 {
			return fmt.Errorf("no columns")
		}
	default:
		return fmt.Errorf("no shape check for panel type %s", panel)
	}
	return nil
}

// checkClickHouseCharts runs every chart of auditpipe_dashboards as
// ClickHouse's /dashboard page does (JSONColumnsWithMetadata, the
// parameters rounding and seconds) and checks the page's chart format.
func checkClickHouseCharts(t *testing.T, p *pipeline) {
	charts := p.rows("SELECT title, query FROM auditpipe_dashboards WHERE dashboard = 'auditpipe'")
	require.GreaterOrEqual(t, len(charts), 8)
	for _, c := range charts {
		title, q := c["title"].(string), c["query"].(string)
		start := time.Now()
		body, err := p.queryWith(q, url.Values{"default_format": {"JSONColumnsWithMetadata"}, "param_rounding": {"60"}, "param_seconds": {"86400"}})
		elapsed := time.Since(start)
		if !assert.NoError(t, err, title) {
			continue
		}
		var res struct {
			Meta []struct{ Name, Type string } `json:"meta"`
			Data map[string][]any              `json:"data"`
			Rows int                           `json:"rows"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &res), title)
		t.Logf("%-48s %4d rows %6.1f ms", title, res.Rows, float64(elapsed.Microseconds())/1000)
		assert.Positive(t, res.Rows, "%s: the page shows an error for an empty result", title)
		require.GreaterOrEqual(t, len(res.Meta), 2, title)
		assert.True(t, strings.Contains(res.Meta[0].Type, "Int"), "%s: t is a Unix time, got %s", title, res.Meta[0].Type)
		if len(res.Meta) == 3 {
			assert.Equal(t, "String", res.Meta[1].Type, "%s: the label column", title)
		}
		assert.True(t, isNumberType(res.Meta[len(res.Meta)-1].Type), "%s: values are numbers, got %s", title, res.Meta[len(res.Meta)-1].Type)
	}
}

// queryWith runs sql against the test's database with extra URL parameters.
func (p *pipeline) queryWith(sql string, params url.Values) (string, error) {
	params.Set("database", p.db)
	resp, err := http.Post(p.ch+"/?"+params.Encode(), "text/plain", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), nil
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return -1
}
