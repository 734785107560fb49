//go:build deploytest

package deploytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// backlog is how many events the simulator holds before the services start.
const backlog = 200

// standIns are the dev stack's pieces a test points the services at, all
// on loopback: kfake, srfake, the embedded ClickHouse, the OpenAI simulator
// and synthetic GeoIP databases written as the dev stack writes them.
type standIns struct {
	brokers  []string
	registry string
	chURL    string
	db       string
	sim      string // base URL, ending in /v1
	geoDir   string
	geo      mmdbgen.Paths
}

func startStandIns(t *testing.T) standIns {
	t.Helper()
	s := standIns{brokers: kafkatest.NewCluster(t).Addrs(), registry: kafkatest.NewFakeSchemaRegistry(t).URL()}
	s.chURL, s.db = chservertest.NewDatabase(t)
	s.sim = openaisimtest.Start(t, openaisim.Config{Seed: 23, Backlog: backlog, BacklogSpan: 6 * time.Hour}).URL() + "/v1"
	s.geoDir = filepath.Join(t.TempDir(), "geoip")
	require.NoError(t, os.MkdirAll(s.geoDir, 0o755))
	readable(t, s.geoDir)
	var err error
	s.geo, err = mmdbgen.Write(s.geoDir, mmdbgen.SimulatorNetworks())
	require.NoError(t, err)
	return s
}

// waitRows waits until the test's table holds want rows.
func waitRows(t *testing.T, s standIns, want int, timeout time.Duration, why func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := ""
	for time.Now().Before(deadline) {
		got = query(t, s.chURL, fmt.Sprintf("SELECT count() FROM `%s`.openai_audit_logs FINAL", s.db))
		if got == strconv.Itoa(want) {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s rows in ClickHouse after %s, want %d\n%s", got, timeout, want, why())
}

// waitReady waits until every URL answers 200.
func waitReady(t *testing.T, urls map[string]string, timeout time.Duration, why func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for name, url := range urls {
		for status(url) != "200 OK" {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s answers %q after %s\n%s", name, url, status(url), timeout, why())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// TestImagesRunInPodman runs the three images as an operator would with
// podman: host network (the stand-ins listen on this namespace's loopback),
// read-only root filesystem, no capabilities, no new privileges, the image's
// own user; the example configuration of deploy/config mounted read-only and
// the environment pointing it at the stand-ins. Every /readyz answers 200,
// the simulator's backlog lands in ClickHouse, each process runs as 65532
// with no capability on a read-only root, and SIGTERM stops each with exit
// status 0.
func TestImagesRunInPodman(t *testing.T) {
	ctx := context.Background()
	s := startStandIns(t)
	admin := map[string]string{}
	env := map[string][]string{
		"poller": {"SOURCES__0__BASE_URL=" + s.sim, "SOURCES__0__ADMIN_KEY=sk-admin-deploytest"},
		"enricher": {"REGISTRY__URLS=" + s.registry, "GEO__CITY=/var/lib/auditpipe/geoip/" + filepath.Base(s.geo.City),
			"GEO__ASN=/var/lib/auditpipe/geoip/" + filepath.Base(s.geo.ASN), "GEO__ISP=/var/lib/auditpipe/geoip/" + filepath.Base(s.geo.ISP),
			"GEO__CONNECTION_TYPE=/var/lib/auditpipe/geoip/" + filepath.Base(s.geo.ConnectionType),
			"GEO__ENTERPRISE=/var/lib/auditpipe/geoip/" + filepath.Base(s.geo.Enterprise)},
		"loader": {"REGISTRY__URLS=" + s.registry, "CLICKHOUSE__ADDR=" + strings.TrimPrefix(s.chURL, "http://"), "CLICKHOUSE__DATABASE=" + s.db,
			"BATCH__MAX_AGE=200ms"},
	}
	config, err := filepath.Abs(filepath.Join(root, "deploy", "config"))
	require.NoError(t, err)
	logs := func() string { return containerLogs(ctx, "poller", "enricher", "loader") }
	for _, svc := range []string{"loader", "enricher", "poller"} {
		port := freePort(t)
		admin[svc] = fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
		prefix := "AUDITPIPE_" + strings.ToUpper(svc) + "_"
		args := []string{"run", "--detach", "--name", svc, "--network", "host",
			"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"--volume", config + ":/etc/auditpipe:ro", "--volume", s.geoDir + ":/var/lib/auditpipe/geoip:ro",
			"--env", prefix + "ADMIN__ADDR=127.0.0.1:" + strconv.Itoa(port),
			"--env", prefix + "KAFKA__BROKERS=" + strings.Join(s.brokers, ","), "--env", prefix + "LOG__FORMAT=text"}
		for _, kv := range env[svc] {
			args = append(args, "--env", prefix+kv)
		}
		args = append(args, image(svc), "--config", "/etc/auditpipe/"+svc+".yaml")
		_, err := engine.Run(ctx, args...)
		require.NoError(t, err)
	}
	t.Cleanup(func() { _, _ = engine.Run(ctx, "rm", "--force", "--time", "5", "poller", "enricher", "loader") })

	waitReady(t, admin, 2*time.Minute, logs)
	waitRows(t, s, backlog, 3*time.Minute, logs)

	for _, svc := range []string{"poller", "enricher", "loader"} {
		t.Run(svc, func(t *testing.T) {
			pid, err := engine.Inspect(ctx, svc, "{{.State.Pid}}")
			require.NoError(t, err)
			checkConfined(t, pid)
			_, err = engine.Run(ctx, "stop", "--time", "45", svc)
			require.NoError(t, err)
			code, err := engine.Inspect(ctx, svc, "{{.State.ExitCode}}")
			require.NoError(t, err)
			assert.Equal(t, "0", code, "%s exits 0 on SIGTERM\n%s", svc, containerLogs(ctx, svc))
		})
	}
}

// checkConfined checks the running process pid from the host's side: user
// and group 65532, no capability in any set, no new privileges, and a
// read-only root mount.
func checkConfined(t *testing.T, pid string) {
	t.Helper()
	st, err := os.ReadFile("/proc/" + pid + "/status")
	require.NoError(t, err)
	fields := map[string]string{}
	for _, line := range strings.Split(string(st), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	assert.Equal(t, "65532 65532 65532 65532", fields["Uid"], "real, effective, saved and filesystem uid")
	assert.Equal(t, "65532 65532 65532 65532", fields["Gid"])
	for _, c := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		assert.Equal(t, "0000000000000000", fields[c], "%s: no capabilities", c)
	}
	assert.Equal(t, "1", fields["NoNewPrivs"])
	mounts, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	require.NoError(t, err)
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			assert.Contains(t, strings.Split(f[5], ","), "ro", "the root filesystem is mounted read-only: %s", line)
			return
		}
	}
	t.Errorf("no root mount in /proc/%s/mountinfo", pid)
}

// containerLogs returns the last lines of each container's output.
func containerLogs(ctx context.Context, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		out, err := engine.Command(ctx, "logs", "--tail", "40", n).CombinedOutput()
		fmt.Fprintf(&b, "--- %s (%v)\n%s\n", n, err, out)
	}
	return b.String()
}
