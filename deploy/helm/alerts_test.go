package helm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/auditpipe/auditpipe/deploy/grafana"
	"github.com/auditpipe/auditpipe/deploy/internal/podrun"
	"github.com/auditpipe/auditpipe/deploy/internal/servicebin"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

const alertNameValidation = model.UTF8Validation

// notYetExported are metrics the alerts or the Grafana dashboards
// (deploy/grafana) use that the services do not export yet. Remove a name as soon as the services export it (the test
// says when).
var notYetExported = map[string]bool{}

// alertRules parses files/alerts.yaml as Prometheus does (promtool check
// rules): unknown fields, PromQL and annotation templates are checked.
func alertRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yaml"))
	require.NoError(t, err)
	groups, errs := rulefmt.Parse(content, false, alertNameValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs, "files/alerts.yaml is a valid Prometheus rule file")
	return groups
}

// alertMetrics returns the metric names each alert's expression selects.
func alertMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	p := parser.NewParser(parser.Options{})
	for _, g := range alertRules(t).Groups {
		for _, r := range g.Rules {
			expr, err := p.ParseExpr(r.Expr)
			require.NoError(t, err, r.Alert)
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok {
					require.NotEmpty(t, vs.Name, "%s: select metrics by name", r.Alert)
					out[r.Alert] = append(out[r.Alert], vs.Name)
				}
				return nil
			})
		}
	}
	return out
}

func TestAlertsCoverTheIssue(t *testing.T) {
	// What the alerts must watch, each by the metric that shows it.
	want := map[string]string{
		"a source cannot authenticate":      "auditpipe_poller_source_authenticated",
		"the poller watermark lags":         "auditpipe_poller_watermark_lag_seconds",
		"consumer lag has grown":            "auditpipe_consumer_lag_records",
		"any record is dead-lettered":       "auditpipe_dlq_records_total",
		"a GeoIP database is old":           "auditpipe_enricher_geo_database_build_age_seconds",
		"ClickHouse inserts fail":           "auditpipe_loader_inserts_total",
		"a service is not ready":            "auditpipe_ready",
		"a consumer's partitions are stuck": "auditpipe_consumer_stalled_partitions",
	}
	used := map[string]bool{}
	for _, names := range alertMetrics(t) {
		for _, n := range names {
			used[n] = true
		}
	}
	for what, metric := range want {
		assert.True(t, used[metric], "no alert when %s (%s)", what, metric)
	}
}

// TestAlertMetricsAreExported runs the pipeline as the chart deploys it:
// the chart is rendered for in-process Kafka (kfake), a Schema Registry
// (srfake), the embedded ClickHouse and the OpenAI simulator; the migrations
// Job's containers run first, then the three services with the pods'
// arguments, environment and files. Once events flow, every metric an
// alert or a panel of the pipeline dashboard (deploy/grafana) names must be
// in the services' /metrics.
func TestAlertMetricsAreExported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vals, geoDir := pipelineValues(t)
	m := render(t, vals)
	cluster := podrun.Cluster{ConfigMaps: map[string]map[string]string{}, Secrets: map[string]map[string]string{"openai-sim": {"admin-key": "sk-admin-chart-test"}},
		Volumes: map[string]string{"geoip": geoDir}, Namespace: namespace}
	for n, cm := range m.ConfigMaps {
		cluster.ConfigMaps[n] = cm.Data
	}
	var logs bytes.Buffer
	out := &servicebin.SyncWriter{W: &logs}
	defer func() {
		if t.Failed() {
			t.Logf("service output:\n%s", logs.String())
		}
	}()

	// The pre-install Job: migrations and schema registration.
	job := m.Jobs[fullName("migrations")].Spec.Template.Spec
	for _, c := range job.Containers {
		cluster.PodName = fullName("migrations") + "-x1"
		inv, err := podrun.Container(job, c.Name, t.TempDir(), cluster)
		require.NoError(t, err)
		o, err := bins.Run(ctx, map[string]string{"migrate": "loader", "register": "enricher"}[c.Name], inv)
		require.NoError(t, err, "the Job's %s container", c.Name)
		out.Write([]byte(o))
	}

	admin := map[string]string{}
	for name, w := range m.workloads() {
		comp := strings.TrimPrefix(name, release+"-auditpipe-")
		cluster.PodName = name + "-0"
		p := startPod(t, w.Pod.Spec, comp, cluster, out)
		defer func() { assert.NoError(t, p.Stop(30*time.Second), "%s stops cleanly", comp) }()
		admin[comp] = fmt.Sprintf("http://127.0.0.1:%d/metrics", w.Pod.Spec.Containers[0].Ports[0].ContainerPort)
	}

	needed := map[string][]string{} // metric -> alerts and panels
	for alert, names := range alertMetrics(t) {
		for _, n := range names {
			needed[n] = append(needed[n], alert)
		}
	}
	panels, err := grafana.PromQLMetrics()
	require.NoError(t, err)
	for n, users := range panels {
		needed[n] = append(needed[n], users...)
	}
	var exported map[string]bool
	missing := func() []string {
		var out []string
		for n := range needed {
			if !exported[n] && !notYetExported[n] {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}
	for {
		seen := map[string]bool{}
		for _, url := range admin {
			names, err := servicebin.MetricNames(ctx, url)
			if err == nil {
				for n := range names {
					seen[n] = true
				}
			}
		}
		if len(seen) > 0 { // a scrape cut short by the deadline keeps the previous result
			exported = seen
		}
		if len(missing()) == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, n := range missing() {
		t.Errorf("alerts or panels %v use %s, which no service exports", needed[n], n)
	}
	for n := range notYetExported {
		assert.False(t, exported[n], "%s is exported now: remove it from notYetExported", n)
		assert.Contains(t, needed, n, "%s is used by no alert or panel: remove it from notYetExported", n)
	}
	assert.True(t, exported["auditpipe_loader_rows_inserted_total"], "events went all the way to ClickHouse")
}

// startPod starts the component's container as the pod would run it and
// waits until its admin server answers.
func startPod(t *testing.T, pod corev1.PodSpec, comp string, cluster podrun.Cluster, out *servicebin.SyncWriter) *servicebin.Process {
	t.Helper()
	inv, err := podrun.Container(pod, comp, t.TempDir(), cluster)
	require.NoError(t, err)
	p, err := bins.Start(comp, inv, out)
	require.NoError(t, err)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", pod.Containers[0].Ports[0].ContainerPort)
	require.Eventually(t, func() bool {
		select {
		case <-p.Done():
			return true
		default:
		}
		_, err := servicebin.MetricNames(context.Background(), strings.TrimSuffix(url, "healthz")+"metrics")
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "%s serves /metrics", comp)
	select {
	case <-p.Done():
		t.Fatalf("%s exited: %v", comp, p.Err())
	default:
	}
	return p
}

// pipelineValues starts the stand-in infrastructure and returns the chart
// values that point the services at it, and the GeoIP directory.
func pipelineValues(t *testing.T) (values, string) {
	t.Helper()
	kafka := kafkatest.NewCluster(t)
	reg := kafkatest.NewFakeSchemaRegistry(t)
	chURL, db := chservertest.NewDatabase(t)
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 14, Backlog: 100, BacklogSpan: 12 * time.Hour})
	geoDir := t.TempDir()
	paths, err := mmdbgen.Write(geoDir, mmdbgen.SimulatorNetworks())
	require.NoError(t, err)
	topic := func(name string, parts int) values {
		return values{"name": name, "partitions": parts, "replication_factor": 1}
	}
	return values{
		"log":        values{"format": "text"},
		"kafka":      values{"brokers": anys(kafka.Addrs())},
		"topics":     values{"raw": topic("openai-audit-raw", 2), "state": topic("auditpipe-poller-state", 2), "enriched": topic("openai-audit-enriched", 2), "dlq": topic("openai-audit-dlq", 1)},
		"registry":   values{"urls": []any{reg.URL()}},
		"clickhouse": values{"addr": []any{strings.TrimPrefix(chURL, "http://")}, "database": db},
		"poller": values{"adminPort": freePort(t), "sources": []any{values{
			"source_id": "sim", "workspace_id": "ws-sim", "base_url": sim.URL() + "/v1", "poll_interval": "10s",
			"admin_key_secret": values{"name": "openai-sim"},
		}}},
		"enricher": values{"adminPort": freePort(t), "geoip": values{
			"volume": values{"persistentVolumeClaim": values{"claimName": "geoip"}},
			"databases": values{"city": filepath.Base(paths.City), "asn": filepath.Base(paths.ASN), "isp": filepath.Base(paths.ISP),
				"connection_type": filepath.Base(paths.ConnectionType), "enterprise": filepath.Base(paths.Enterprise)},
		}},
		"loader": values{"adminPort": freePort(t), "config": values{"batch": values{"max_age": "200ms"}}},
	}, geoDir
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return p
}
