// Package compose holds the test of the compose stack in this directory.
package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"sigs.k8s.io/yaml"

	"github.com/auditpipe/auditpipe/deploy/internal/servicebin"
)

var bins servicebin.Binaries

func TestMain(m *testing.M) { goleak.VerifyTestMain(&setup{m}) }

type setup struct{ m *testing.M }

func (s *setup) Run() int {
	dir, err := os.MkdirTemp("", "compose-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	secrets, err := writeSecrets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(secrets)
	env["AUDITPIPE_SECRETS_DIR"] = secrets
	if bins, err = servicebin.Build(context.Background(), "../..", dir); err != nil {
		fmt.Fprintf(os.Stderr, "building the services: %v\n", err)
		return 1
	}
	return s.m.Run()
}

// env is what an operator's .env provides (see .env.example); TestMain
// points AUDITPIPE_SECRETS_DIR at a directory holding secretFiles.
var env = map[string]string{
	"AUDITPIPE_VERSION":      "v1.2.3",
	"AUDITPIPE_WORKSPACE_ID": "ws-compose",
}

// secretFiles are what an operator writes into the secrets directory.
var secretFiles = map[string]string{
	"openai_admin_key":       "sk-admin-compose-test",
	"clickhouse_password":    "clickhouse-compose-test",
	"grafana_admin_password": "grafana-compose-test",
}

// writeSecrets writes secretFiles into a new directory and returns it.
func writeSecrets() (string, error) {
	dir, err := os.MkdirTemp("", "compose-test-secrets-")
	if err != nil {
		return "", err
	}
	for name, v := range secretFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// load loads and validates the project as `docker compose config` does.
func load(t *testing.T, environment map[string]string) (*types.Project, error) {
	t.Helper()
	var kv []string
	for k, v := range environment {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"}, cli.WithWorkingDirectory("."), cli.WithEnv(kv))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

func TestProjectLoads(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	assert.Equal(t, "auditpipe", p.Name)
	for _, name := range []string{"kafka-1", "kafka-2", "kafka-3", "schema-registry", "clickhouse", "migrate", "register", "poller", "enricher", "loader", "prometheus", "grafana"} {
		assert.Contains(t, p.Services, name)
	}
	for _, svc := range []string{"poller", "enricher", "loader"} {
		assert.Equal(t, "auditpipe/"+svc+":v1.2.3", p.Services[svc].Image, "the image make images tagged")
	}

	ch := p.Services["clickhouse"]
	assert.Equal(t, "/run/secrets/clickhouse_password", *ch.Environment["CLICKHOUSE_PASSWORD_FILE"], "ClickHouse's password is the compose secret")
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v != nil {
				assert.NotContains(t, secretValues(), *v, "%s: %s carries a secret in the environment", name, k)
			}
		}
	}

	t.Run("without the image tag", func(t *testing.T) {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		delete(e, "AUDITPIPE_VERSION")
		_, err := load(t, e)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "set AUDITPIPE_VERSION to the tag make images printed")
	})
}

func TestKafkaHasThreeNodes(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	ids := map[string]bool{}
	for name, s := range p.Services {
		if !strings.HasPrefix(s.Image, "apache/kafka:4.") {
			continue
		}
		e := s.Environment
		assert.Equal(t, "broker,controller", *e["KAFKA_PROCESS_ROLES"], name)
		assert.Equal(t, "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093", *e["KAFKA_CONTROLLER_QUORUM_VOTERS"], name)
		assert.Equal(t, "3", *e["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"], name)
		assert.Equal(t, "2", *e["KAFKA_MIN_INSYNC_REPLICAS"], name)
		ids[*e["KAFKA_NODE_ID"]] = true
	}
	assert.Equal(t, map[string]bool{"1": true, "2": true, "3": true}, ids, "three KRaft nodes")
}

func TestMountedFilesExist(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				assert.Contains(t, p.Volumes, v.Source, "%s: named volume %s is declared", name, v.Source)
				continue
			}
			_, err := os.Stat(v.Source)
			assert.NoError(t, err, "%s mounts %s", name, v.Source)
		}
		for _, c := range s.Configs {
			cfg, ok := p.Configs[c.Source]
			require.True(t, ok, "%s: config %s is declared", name, c.Source)
			assert.FileExists(t, cfg.File, "%s: config %s", name, c.Source)
		}
		for _, sec := range s.Secrets {
			_, ok := p.Secrets[sec.Source]
			require.True(t, ok, "%s: secret %s is declared", name, sec.Source)
		}
	}
}

// TestSecretsAreFiles: every secret is a file of the secrets directory,
// which Docker Compose and podman-compose both hand over (podman-compose
// refuses secrets taken from the environment), and the default directory
// is never committed.
func TestSecretsAreFiles(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	require.Len(t, p.Secrets, len(secretFiles))
	for name, decl := range p.Secrets {
		assert.Empty(t, decl.Environment, "%s: an environment secret, which podman-compose refuses", name)
		assert.Equal(t, filepath.Join(env["AUDITPIPE_SECRETS_DIR"], name), decl.File, "%s: a file of AUDITPIPE_SECRETS_DIR", name)
	}

	e := map[string]string{}
	for k, v := range env {
		e[k] = v
	}
	delete(e, "AUDITPIPE_SECRETS_DIR")
	p, err = load(t, e)
	require.NoError(t, err)
	ignore, err := os.ReadFile("../../.gitignore")
	require.NoError(t, err)
	for name, decl := range p.Secrets {
		assert.Equal(t, mustAbs(t, filepath.Join("secrets", name)), decl.File, "%s: by default in ./secrets", name)
	}
	assert.Contains(t, strings.Split(string(ignore), "\n"), "/deploy/compose/secrets/", "the secrets directory is git-ignored")
}

// secretValues are the secrets' contents.
func secretValues() []string {
	var out []string
	for _, v := range secretFiles {
		out = append(out, v)
	}
	return out
}

func TestHostPortsAreUnique(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	owner := map[string]string{}
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if port.Published == "" {
				continue
			}
			ip := port.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			key := fmt.Sprintf("%s:%s/%s", ip, port.Published, port.Protocol)
			if other, dup := owner[key]; dup {
				t.Errorf("%s and %s both publish %s", other, name, key)
			}
			owner[key] = name
			assert.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %s on loopback only", name, port.Published)
		}
	}
	assert.NotEmpty(t, owner)
}

// TestServiceConfigsAreValid runs each auditpipe container's binary with
// --check-config on what compose hands it: its command, its environment,
// the config files and the secrets at their targets.
func TestServiceConfigsAreValid(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	checked := 0
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		binary := serviceOf(s.Image)
		if binary == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			inv, err := invocation(p, s, t.TempDir())
			require.NoError(t, err)
			out, err := bins.CheckConfig(context.Background(), binary, inv)
			require.NoError(t, err)
			for _, secret := range secretValues() {
				assert.NotContains(t, out, secret)
			}
			switch name {
			case "poller":
				assert.Contains(t, out, "workspace_id: ws-compose")
				assert.Contains(t, out, "admin_key: '[REDACTED]'")
			case "loader":
				assert.Contains(t, out, "migrate: false", "the migrate service applies the migrations")
				assert.Contains(t, out, "password: '[REDACTED]'")
				assert.Contains(t, out, "protocol: http", "HTTP, the protocol every test loads over (docs/loader.md)")
			case "enricher":
				assert.Contains(t, out, "register: false", "the register service registers the schema")
			case "migrate":
				assert.Contains(t, out, "migrate_only: true")
			case "register":
				assert.Contains(t, out, "register_only: true")
			}
		})
		checked++
	}
	assert.Equal(t, 5, checked, "poller, enricher, loader, migrate, register")
}

// serviceOf returns the auditpipe binary an image runs ("" for others).
func serviceOf(image string) string {
	for _, svc := range servicebin.Services {
		if strings.Contains(image, "/"+svc+":") {
			return svc
		}
	}
	return ""
}

// invocation lays out what the container would see under root (configs,
// secrets, bind mounts) and returns its command and environment with the
// mount targets rewritten under root.
func invocation(p *types.Project, s types.ServiceConfig, root string) (servicebin.Invocation, error) {
	files := map[string]string{} // target -> content
	for _, c := range s.Configs {
		b, err := os.ReadFile(p.Configs[c.Source].File)
		if err != nil {
			return servicebin.Invocation{}, err
		}
		files[c.Target] = string(b)
	}
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = "/run/secrets/" + sec.Source
		}
		b, err := os.ReadFile(p.Secrets[sec.Source].File)
		if err != nil {
			return servicebin.Invocation{}, fmt.Errorf("secret %s: %w", sec.Source, err)
		}
		files[target] = string(b)
	}
	var targets []string
	for t := range files {
		targets = append(targets, t)
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			targets = append(targets, v.Target)
		}
	}
	// Longest first, so a nested path is rewritten before its parent.
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	var pairs []string
	for _, t := range targets {
		pairs = append(pairs, t, filepath.Join(root, t))
	}
	rw := strings.NewReplacer(pairs...)
	for target, content := range files {
		path := filepath.Join(root, target)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return servicebin.Invocation{}, err
		}
		if err := os.WriteFile(path, []byte(rw.Replace(content)), 0o600); err != nil {
			return servicebin.Invocation{}, err
		}
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, v.Target)), 0o755); err != nil {
				return servicebin.Invocation{}, err
			}
			if err := os.Symlink(v.Source, filepath.Join(root, v.Target)); err != nil {
				return servicebin.Invocation{}, err
			}
		}
	}
	inv := servicebin.Invocation{Dir: root}
	for _, a := range s.Command {
		inv.Args = append(inv.Args, rw.Replace(a))
	}
	for k, v := range s.Environment {
		if v != nil {
			inv.Env = append(inv.Env, k+"="+rw.Replace(*v))
		}
	}
	return inv, nil
}

// TestPrometheusScrapesTheServices: every service's admin address is a
// scrape target, and the rule file Prometheus loads is the chart's.
func TestPrometheusScrapesTheServices(t *testing.T) {
	p, err := load(t, env)
	require.NoError(t, err)
	var cfg struct {
		Global struct {
			ScrapeInterval     string `json:"scrape_interval"`
			EvaluationInterval string `json:"evaluation_interval"`
		} `json:"global"`
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	b, err := os.ReadFile("prometheus/prometheus.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(b, &cfg))
	targets := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				targets[tg] = true
			}
		}
	}
	for _, svc := range servicebin.Services {
		var c struct {
			Admin struct {
				Addr string `json:"addr"`
			} `json:"admin"`
		}
		b, err := os.ReadFile(p.Configs[svc].File)
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(b, &c))
		assert.True(t, targets[svc+c.Admin.Addr], "Prometheus scrapes %s at its admin address %s", svc, c.Admin.Addr)
	}
	mounted := map[string]string{}
	for _, v := range p.Services["prometheus"].Volumes {
		mounted[v.Target] = v.Source
	}
	require.Len(t, cfg.RuleFiles, 1)
	chartRules, err := filepath.Abs("../helm/auditpipe/files/alerts.yaml")
	require.NoError(t, err)
	assert.Equal(t, chartRules, mounted[cfg.RuleFiles[0]], "the alert rules are the Helm chart's file")
	assert.Equal(t, mounted["/etc/prometheus/prometheus.yml"], mustAbs(t, "prometheus/prometheus.yml"))
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	require.NoError(t, err)
	return a
}
