//go:build deploytest

package deploytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/deploy/helm"
	"github.com/auditpipe/auditpipe/deploy/internal/kubeplay"
)

type values = map[string]any

// chartDir is the Helm chart.
var chartDir = filepath.Join(root, "deploy", "helm", "auditpipe")

// standInValues are the chart values that point every service at the
// stand-ins: one replica each, one source (the simulator, its key in the
// Secret openai-sim), the GeoIP databases from a hostPath volume, the
// default image tag and ClickHouse protocol.
func standInValues(t *testing.T, s standIns) (values, map[string]string) {
	t.Helper()
	topic := func(name string, parts int) values {
		return values{"name": name, "partitions": parts, "replication_factor": 1}
	}
	ports := map[string]string{}
	svc := func(name string, v values) values {
		port := freePort(t)
		ports[name] = fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
		v["adminPort"], v["replicas"] = port, 1
		return v
	}
	anys := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	return values{
		"image":      values{"pullPolicy": "Never"},
		"log":        values{"format": "text"},
		"kafka":      values{"brokers": anys(s.brokers)},
		"topics":     values{"raw": topic("openai-audit-raw", 2), "state": topic("auditpipe-poller-state", 2), "enriched": topic("openai-audit-enriched", 2), "dlq": topic("openai-audit-dlq", 1)},
		"registry":   values{"urls": []any{s.registry}},
		"clickhouse": values{"addr": []any{strings.TrimPrefix(s.chURL, "http://")}, "database": s.db},
		"poller": svc("poller", values{"sources": []any{values{
			"source_id": "sim", "workspace_id": "ws-sim", "base_url": s.sim, "poll_interval": "10s",
			"admin_key_secret": values{"name": "openai-sim"},
		}}}),
		"enricher": svc("enricher", values{"geoip": values{
			"volume": values{"hostPath": values{"path": s.geoDir, "type": "Directory"}},
			"databases": values{"city": filepath.Base(s.geo.City), "asn": filepath.Base(s.geo.ASN), "isp": filepath.Base(s.geo.ISP),
				"connection_type": filepath.Base(s.geo.ConnectionType), "enterprise": filepath.Base(s.geo.Enterprise)},
		}}),
		"loader": svc("loader", values{"config": values{"batch": values{"max_age": "200ms"}}}),
	}, ports
}

// TestChartRunsInPodmanKubePlay renders the chart for the stand-ins,
// converts what podman 4.3 cannot run (package kubeplay: the Job, the
// StatefulSet, the Secret volumes) and plays it: first the pre-install hook,
// whose migrate and register containers must exit 0, then the release, whose
// three pods must become ready and load the simulator's backlog.
func TestChartRunsInPodmanKubePlay(t *testing.T) {
	ctx := context.Background()
	s := startStandIns(t)
	vals, ready := standInValues(t, s)
	files, err := helm.Render(chartDir, "play", "default", vals)
	require.NoError(t, err)
	secretsDir := t.TempDir()
	readable(t, secretsDir)
	plays, err := kubeplay.Convert(kubeplay.Input{Manifests: helm.Documents(files), Dir: secretsDir,
		Secrets: map[string]map[string]string{"openai-sim": {"admin-key": "sk-admin-kubeplay"}}})
	require.NoError(t, err)
	dir := t.TempDir()
	hooks, release := filepath.Join(dir, "hooks.yaml"), filepath.Join(dir, "release.yaml")
	require.NoError(t, os.WriteFile(hooks, plays.Hooks, 0o644))
	require.NoError(t, os.WriteFile(release, plays.Release, 0o644))
	logs := func() string { return podLogs(ctx) }
	t.Cleanup(func() {
		for _, f := range []string{release, hooks} {
			_, _ = engine.Run(ctx, "kube", "down", f)
		}
	})

	_, err = engine.Run(ctx, "kube", "play", "--network", "host", hooks)
	require.NoError(t, err)
	require.Equal(t, []string{"play-auditpipe-migrations"}, plays.HookPods)
	for _, c := range []string{"migrate", "register"} {
		name := plays.HookPods[0] + "-" + c
		code, err := engine.Run(ctx, "wait", name)
		require.NoError(t, err)
		require.Equal(t, "0", code, "the migrations Job's %s container exits 0\n%s", c, logs())
	}
	assert.Equal(t, "1", query(t, s.chURL, fmt.Sprintf("EXISTS TABLE `%s`.openai_audit_logs", s.db)), "the Job applied the migrations")

	_, err = engine.Run(ctx, "kube", "play", "--network", "host", release)
	require.NoError(t, err)
	waitReady(t, ready, 2*time.Minute, logs)
	waitRows(t, s, backlog, 3*time.Minute, logs)
}

// podLogs returns the last lines of every container's output.
func podLogs(ctx context.Context) string {
	names, err := engine.Run(ctx, "ps", "--all", "--format", "{{.Names}}")
	if err != nil {
		return err.Error()
	}
	var cs []string
	for _, n := range strings.Fields(names) {
		if !strings.HasSuffix(n, "-infra") {
			cs = append(cs, n)
		}
	}
	return containerLogs(ctx, cs...)
}
