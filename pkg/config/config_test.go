package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

type sasl struct {
	Mechanism    string        `koanf:"mechanism"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
}

func (s sasl) Validate() error {
	var errs []error
	if s.Mechanism != "" && s.Mechanism != "PLAIN" {
		errs = append(errs, fmt.Errorf("mechanism: unknown %q (want PLAIN)", s.Mechanism))
	}
	if s.Mechanism != "" && !s.Password.IsSet() {
		errs = append(errs, errors.New("password: required with a mechanism"))
	}
	return errors.Join(errs...)
}

type source struct {
	ID       string            `koanf:"id"`
	Interval time.Duration     `koanf:"interval"`
	Key      config.Secret     `koanf:"key"`
	KeyFile  string            `koanf:"key_file"`
	Tags     map[string]string `koanf:"tags"`
}

func (s source) Validate() error {
	if s.ID == "" {
		return errors.New("id: required")
	}
	return nil
}

type testConfig struct {
	Brokers []string      `koanf:"brokers"`
	Timeout time.Duration `koanf:"timeout"`
	Workers int           `koanf:"workers"`
	SASL    sasl          `koanf:"sasl"`
	Sources []source      `koanf:"sources"`
}

func (c testConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("brokers: must list at least one broker")
	}
	return nil
}

func defaults() testConfig {
	return testConfig{Brokers: []string{"127.0.0.1:9092"}, Timeout: 5 * time.Second, Workers: 2}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func env(kv ...string) func() []string { return func() []string { return kv } }

func TestLoadOrder(t *testing.T) {
	file := writeFile(t, "c.yaml", "timeout: 7s\nworkers: 3\nsources:\n  - id: a\n    interval: 1m\n")
	cfg := defaults()
	err := config.Load(&cfg, config.Options{File: file, EnvPrefix: "T_", Environ: env(
		"T_WORKERS=9", "T_BROKERS=a:1,b:2", "T_SOURCES__0__KEY=sk-admin-x", "T_SOURCES__1__ID=b", "OTHER=1",
	)})
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "b:2"}, cfg.Brokers, "env overrides default")
	assert.Equal(t, 7*time.Second, cfg.Timeout, "file overrides default")
	assert.Equal(t, 9, cfg.Workers, "env overrides file")
	require.Len(t, cfg.Sources, 2)
	assert.Equal(t, "a", cfg.Sources[0].ID)
	assert.Equal(t, time.Minute, cfg.Sources[0].Interval)
	assert.Equal(t, "sk-admin-x", cfg.Sources[0].Key.Value())
	assert.Equal(t, "b", cfg.Sources[1].ID, "an index one past the end appends")
}

func TestEnvListIndexesInNumericOrder(t *testing.T) {
	var vars []string
	for i := 11; i >= 0; i-- { // reversed: the environment's order is not the index order
		vars = append(vars, fmt.Sprintf("T_SOURCES__%d__ID=s%d", i, i), fmt.Sprintf("T_SOURCES__%d__INTERVAL=%ds", i, i+1))
	}
	cfg := defaults()
	require.NoError(t, config.Load(&cfg, config.Options{EnvPrefix: "T_", Environ: env(vars...)}))
	require.Len(t, cfg.Sources, 12)
	for i, s := range cfg.Sources {
		assert.Equal(t, fmt.Sprintf("s%d", i), s.ID, "SOURCES__%d lands at index %d", i, i)
		assert.Equal(t, time.Duration(i+1)*time.Second, s.Interval)
	}
}

func TestLoadErrors(t *testing.T) {
	secretFile := writeFile(t, "pw", "hunter2\n")
	cases := []struct {
		name  string
		file  string
		env   []string
		wants []string
	}{
		{name: "unknown key in file", file: "brokerz: [a]\n", wants: []string{"brokerz: unknown configuration key (in "}},
		{name: "unknown nested key in file", file: "sasl:\n  mechanizm: PLAIN\n", wants: []string{"sasl.mechanizm: unknown configuration key"}},
		{name: "unknown key in env", env: []string{"T_SASL__USER=x"}, wants: []string{"sasl.user: unknown configuration key (from environment variable T_SASL__USER)"}},
		{name: "unknown key in list element", file: "sources:\n  - id: a\n    intervl: 1s\n", wants: []string{"sources[0].intervl: unknown configuration key"}},
		{name: "every validation problem at once", file: "brokers: []\nsasl:\n  mechanism: GSSAPI\nsources:\n  - interval: 1s\n", wants: []string{
			"brokers: must list at least one broker", "sasl.mechanism: unknown \"GSSAPI\"", "sasl.password: required with a mechanism", "sources[0].id: required"}},
		{name: "secret written in file", file: "sasl:\n  mechanism: PLAIN\n  password: hunter2\n", wants: []string{"sasl.password: secrets must not be written in"}},
		{name: "secret twice", file: "sasl:\n  mechanism: PLAIN\n  password_file: " + secretFile + "\n", env: []string{"T_SASL__PASSWORD=x"}, wants: []string{"sasl.password: set both directly and through password_file"}},
		{name: "missing secret file", file: "sasl:\n  password_file: /nonexistent/pw\n", wants: []string{"sasl.password_file: reading secret file"}},
		{name: "bad duration", env: []string{"T_TIMEOUT=soon"}, wants: []string{"timeout"}},
		{name: "list index gap", env: []string{"T_SOURCES__3__ID=x"}, wants: []string{"T_SOURCES__3__ID: sources has 0 elements: index 3 is out of range"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := config.Options{EnvPrefix: "T_", Environ: env(tc.env...)}
			if tc.file != "" {
				opts.File = writeFile(t, "c.yaml", tc.file)
			}
			cfg := defaults()
			err := config.Load(&cfg, opts)
			require.Error(t, err)
			for _, w := range tc.wants {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "hunter2", "secrets never reach errors")
		})
	}
}

func TestSecretFromFile(t *testing.T) {
	pw := writeFile(t, "pw", "hunter2\n")
	cfg := defaults()
	err := config.Load(&cfg, config.Options{File: writeFile(t, "c.yaml", "sasl:\n  mechanism: PLAIN\n  password_file: "+pw+"\n")})
	require.NoError(t, err)
	assert.Equal(t, "hunter2", cfg.SASL.Password.Value(), "trailing newline trimmed")
}

func TestSecretNeverPrints(t *testing.T) {
	s := config.NewSecret("hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprintf("%+v", struct{ S config.Secret }{s})} {
		assert.NotContains(t, out, "hunter2")
	}
	txt, err := s.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, config.Redacted, string(txt))
	assert.Empty(t, config.Secret{}.String())
}

func TestRedact(t *testing.T) {
	cfg := defaults()
	cfg.SASL = sasl{Mechanism: "PLAIN", Password: config.NewSecret("hunter2")}
	cfg.Sources = []source{{ID: "a", Interval: time.Minute, Key: config.NewSecret("sk-admin-zzz"), Tags: map[string]string{"env": "prod"}}}
	out, err := config.Redact(cfg)
	require.NoError(t, err)
	assert.NotContains(t, out, "hunter2")
	assert.NotContains(t, out, "sk-admin-zzz")
	assert.Contains(t, out, "password: '[REDACTED]'")
	assert.Contains(t, out, "timeout: 5s")
	assert.Contains(t, out, "env: prod")
	assert.Less(t, strings.Index(out, "brokers"), strings.Index(out, "sources"), "keys keep field order")
}

func TestValidateWrapsCauses(t *testing.T) {
	sentinel := errors.New("boom")
	err := config.Validate(struct {
		Inner wrapper `koanf:"inner"`
	}{Inner: wrapper{err: sentinel}})
	require.ErrorIs(t, err, sentinel)
	assert.Equal(t, "inner.boom", err.Error())
}

type wrapper struct{ err error }

func (w wrapper) Validate() error { return w.err }

func FuzzEnvPath(f *testing.F) {
	f.Add("SOURCES__0__ID", "x")
	f.Add("A____B", "")
	f.Add("SOURCES__-1", "y")
	f.Fuzz(func(t *testing.T, name, value string) {
		cfg := defaults()
		_ = config.Load(&cfg, config.Options{EnvPrefix: "T_", Environ: env("T_" + name + "=" + value)})
	})
}

// shared is a section that several services embed flat.
type shared struct {
	URLs    []string      `koanf:"urls"`
	Timeout time.Duration `koanf:"timeout"`
	Pass    config.Secret `koanf:"pass"`
	// PassFile is read into Pass by Load.
	PassFile string `koanf:"pass_file"`
}

type squashedSection struct {
	shared  `koanf:",squash"`
	Subject string `koanf:"subject"`
}

func (s squashedSection) Validate() error {
	var errs []error
	if len(s.URLs) == 0 {
		errs = append(errs, errors.New("urls: required"))
	}
	if s.Subject == "" {
		errs = append(errs, errors.New("subject: required"))
	}
	return errors.Join(errs...)
}

type squashConfig struct {
	Registry squashedSection `koanf:"registry"`
}

func TestSquashedStructKeepsKeysFlat(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("registry:\n  urls: [http://a]\n  timeout: 3s\n  pass_file: "+secret+"\n"), 0o600))

	cfg := squashConfig{Registry: squashedSection{shared: shared{Timeout: time.Second}, Subject: "s"}}
	require.NoError(t, config.Load(&cfg, config.Options{File: file, EnvPrefix: "T_", Environ: func() []string { return []string{"T_REGISTRY__SUBJECT=from-env"} }}))
	assert.Equal(t, []string{"http://a"}, cfg.Registry.URLs)
	assert.Equal(t, 3*time.Second, cfg.Registry.Timeout)
	assert.Equal(t, "s3cret", cfg.Registry.Pass.Value(), "the *_file sibling inside the squashed struct is resolved")
	assert.Equal(t, "from-env", cfg.Registry.Subject)

	out, err := config.Redact(cfg)
	require.NoError(t, err)
	assert.Contains(t, out, "registry:\n    urls: ['http://a']\n    timeout: 3s\n    pass: '[REDACTED]'\n    pass_file: ")
	assert.NotContains(t, out, "shared")

	// Unknown keys, secrets in the file and Validate see the flat keys.
	require.NoError(t, os.WriteFile(file, []byte("registry:\n  urls: []\n  pass: x\n  shared: {}\n"), 0o600))
	cfg = squashConfig{}
	err = config.Load(&cfg, config.Options{File: file})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registry.shared: unknown configuration key")
	assert.Contains(t, err.Error(), "registry.pass: secrets must not be written")

	err = config.Validate(squashConfig{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registry.urls: required")
	assert.Contains(t, err.Error(), "registry.subject: required")
}
