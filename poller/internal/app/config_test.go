package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/poller/internal/collect"
)

func load(t *testing.T, yaml string, env ...string) (Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "poller.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	cfg := DefaultConfig()
	err := config.Load(&cfg, config.Options{File: p, EnvPrefix: "AUDITPIPE_POLLER_", Environ: func() []string { return env }})
	return cfg, err
}

func TestConfigDefaultsPerSource(t *testing.T) {
	cfg, err := load(t, "sources:\n  - source_id: a\n    workspace_id: w\n  - source_id: b\n    workspace_id: w\n    poll_interval: 15s\n    tenant_only: false\n",
		"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=sk-admin-a", "AUDITPIPE_POLLER_SOURCES__1__ADMIN_KEY=sk-admin-b")
	require.NoError(t, err)
	a, b := cfg.Sources[0].withDefaults(), cfg.Sources[1].withDefaults()
	assert.Equal(t, DefaultBaseURL, a.BaseURL)
	assert.Equal(t, DefaultPollInterval, a.PollInterval)
	assert.Equal(t, 15*time.Second, b.PollInterval)
	assert.Equal(t, DefaultRescanWindow, a.RescanWindow)
	assert.Equal(t, 365, a.SourceTTLDays)
	assert.Equal(t, []string{"default", "tenant"}, streamNames(a.streams()))
	assert.Equal(t, []string{"default"}, streamNames(b.streams()))
	assert.Equal(t, "sk-admin-a", a.AdminKey.Value())
}

func TestHelpNamesRealKeys(t *testing.T) {
	var env []string
	for _, ex := range EnvExamples {
		kv, _, _ := strings.Cut(ex, " ")
		env = append(env, "AUDITPIPE_POLLER_"+kv)
	}
	cfg, err := load(t, "sources:\n  - workspace_id: w\n", env...)
	require.NoError(t, err, "every example is a key the poller knows")
	require.Len(t, cfg.Sources, 1)
	assert.Equal(t, "sk-admin-…", cfg.Sources[0].AdminKey.Value())
	assert.Equal(t, "acme", cfg.Sources[0].SourceID)
}

func streamNames(ss []collect.Stream) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"missing key", "sources:\n  - source_id: a\n    workspace_id: w\n", nil, []string{"sources[0].admin_key: required"}},
		{"key in file", "sources:\n  - source_id: a\n    workspace_id: w\n    admin_key: sk-admin-x\n", nil, []string{"secrets must not be written"}},
		{"poll too fast", "sources:\n  - source_id: a\n    workspace_id: w\n    poll_interval: 5s\n", []string{"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=k"}, []string{"sources[0].poll_interval: must be at least 10s"}},
		{"duplicate ids", "sources:\n  - source_id: a\n    workspace_id: w\n  - source_id: a\n    workspace_id: w\n", []string{"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=k", "AUDITPIPE_POLLER_SOURCES__1__ADMIN_KEY=k"}, []string{"source ids must be unique"}},
		{"bad url and page", "sources:\n  - source_id: a\n    workspace_id: w\n    base_url: ftp://x\n    page_size: 500\n", []string{"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=k"}, []string{"base_url", "page_size"}},
		{"dedup too big", "collection:\n  dedup_capacity: 500000\n", nil, []string{"collection.dedup_capacity"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, tc.env...)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "sk-admin-x")
		})
	}
}

func TestBaseURL(t *testing.T) {
	key := []string{"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=sk-admin-x"}
	src := func(url string, extra ...string) string {
		y := "sources:\n  - source_id: a\n    workspace_id: w\n    base_url: " + url + "\n"
		for _, e := range extra {
			y += "    " + e + "\n"
		}
		return y
	}
	cases := []struct {
		name, yaml string
		want       string // "" means valid
		notIn      string // never in the error
	}{
		{"https", src("https://api.openai.com/v1"), "", ""},
		{"http to loopback", src("http://127.0.0.1:8787/v1"), "", ""},
		{"http to localhost", src("http://localhost:8787/v1"), "", ""},
		{"http to ::1", src("http://[::1]:8787/v1"), "", ""},
		{"http to another host", src("http://api.internal:8080/v1"), "sources[0].base_url: http://api.internal:8080/v1 sends the admin key in clear text to a host that is not loopback: use https, or set allow_insecure_http: true on this source", ""},
		{"http to another host, opted in", src("http://api.internal:8080/v1", "allow_insecure_http: true"), "", ""},
		{"userinfo", src("https://bob:hunter2@api.openai.com/v1"), "sources[0].base_url: must not hold a user or password (user:password@)", "hunter2"},
		{"userinfo without password", src("https://bob@api.openai.com/v1"), "must not hold a user or password", "bob@"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, key...)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.notIn != "" {
				assert.NotContains(t, err.Error(), tc.notIn, "the userinfo is never printed")
			}
		})
	}
}

func TestStreamsSplitTenantTypes(t *testing.T) {
	yes := true
	s := SourceConfig{EventTypes: []string{"api_key.created", "tenant.user.added", "role.bound_to_resource"}, TenantOnly: &yes}
	ss := s.streams()
	require.Len(t, ss, 2)
	assert.Equal(t, []string{"api_key.created"}, ss[0].EventTypes)
	assert.Equal(t, []string{"tenant.user.added", "role.bound_to_resource"}, ss[1].EventTypes)
	assert.True(t, ss[1].TenantOnly)
	only := SourceConfig{EventTypes: []string{"login.failed"}, TenantOnly: &yes}
	assert.Equal(t, []string{"default"}, streamNames(only.streams()), "no tenant type asked: no tenant stream")
}

func TestExampleConfigLoads(t *testing.T) {
	cfg := DefaultConfig()
	err := config.Load(&cfg, config.Options{File: "../../../deploy/config/poller.yaml", EnvPrefix: "AUDITPIPE_POLLER_",
		Environ: func() []string { return []string{"AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=sk-admin-dev"} }})
	require.NoError(t, err)
	require.Len(t, cfg.Sources, 1)
}
