package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

func TestScrubber(t *testing.T) {
	s := config.NewScrubber(config.NewSecret("sk-admin-abc"), config.NewSecret("sk-admin-abcdef"), config.Secret{}, config.NewSecret("hunter2"))
	for _, tc := range []struct{ in, want string }{
		{"Incorrect API key provided: sk-admin-abcdef.", "Incorrect API key provided: [REDACTED]."},
		{"sk-admin-abc and hunter2hunter2", "[REDACTED] and [REDACTED][REDACTED]"},
		{"nothing secret", "nothing secret"},
	} {
		assert.Equal(t, tc.want, s.Scrub(tc.in))
	}
	var none *config.Scrubber
	assert.Equal(t, "sk-admin-abc", none.Scrub("sk-admin-abc"), "a nil scrubber scrubs nothing")
	assert.Equal(t, "x", config.NewScrubber().Scrub("x"))
}

func TestSecretsOf(t *testing.T) {
	cfg := defaults()
	cfg.SASL.Password = config.NewSecret("pw")
	cfg.Sources = []source{{ID: "a", Key: config.NewSecret("k1")}, {ID: "b"}, {ID: "c", Key: config.NewSecret("k3")}}
	var got []string
	for _, s := range config.SecretsOf(&cfg) {
		got = append(got, s.Value())
	}
	assert.ElementsMatch(t, []string{"pw", "k1", "k3"}, got)
}

func TestSecretFilePermissions(t *testing.T) {
	cases := []struct {
		mode os.FileMode
		gid  int // the file's group; 0: the one it was created with (ours)
		warn bool
	}{
		{mode: 0o600},
		{mode: 0o400},
		{mode: 0o440}, // readable by the service's own group only (Kubernetes fsGroup)
		{mode: 0o644, warn: true},
		{mode: 0o604, warn: true},
	}
	if os.Getuid() == 0 { // only root may hand a file to another group
		cases = append(cases, struct {
			mode os.FileMode
			gid  int
			warn bool
		}{mode: 0o640, gid: os.Getgid() + 4242, warn: true})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s gid %d", tc.mode, tc.gid), func(t *testing.T) {
			pw := writeFile(t, "pw", "hunter2\n")
			require.NoError(t, os.Chmod(pw, tc.mode))
			if tc.gid != 0 {
				require.NoError(t, os.Chown(pw, -1, tc.gid))
			}
			var warnings []config.Warning
			cfg := defaults()
			err := config.Load(&cfg, config.Options{
				File: writeFile(t, "c.yaml", "sasl:\n  mechanism: PLAIN\n  password_file: "+pw+"\n"),
				Warn: func(w config.Warning) { warnings = append(warnings, w) },
			})
			require.NoError(t, err)
			assert.Equal(t, "hunter2", cfg.SASL.Password.Value())
			if !tc.warn {
				assert.Empty(t, warnings)
				return
			}
			require.Len(t, warnings, 1)
			w := warnings[0]
			assert.Equal(t, "sasl.password_file", w.Key)
			assert.Equal(t, pw, w.File)
			assert.Equal(t, tc.mode, w.Mode)
			assert.Contains(t, w.Message, "chmod 600")
			assert.NotContains(t, w.Message, "hunter2", "never the content")
			assert.True(t, strings.Contains(w.Message, pw))
		})
	}
}
