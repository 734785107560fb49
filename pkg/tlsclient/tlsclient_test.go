package tlsclient_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/tlsclient"
)

func TestBuild(t *testing.T) {
	tc, err := tlsclient.Config{}.Build()
	require.NoError(t, err)
	assert.Nil(t, tc, "TLS off")

	tc, err = tlsclient.Config{Enabled: true, ServerName: "ch.example"}.Build()
	require.NoError(t, err)
	assert.Equal(t, "ch.example", tc.ServerName)
	assert.Nil(t, tc.RootCAs, "the system pool")

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err = tlsclient.Config{Enabled: true, CAFile: notPEM}.Build()
	require.ErrorContains(t, err, "no PEM certificate found")
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  tlsclient.Config
		want []string
	}{
		{name: "off", cfg: tlsclient.Config{}},
		{name: "files without enabled", cfg: tlsclient.Config{CAFile: "x", InsecureSkipVerify: true}, want: []string{"ca_file: set but enabled is false", "insecure_skip_verify: set but enabled is false"}},
		{name: "missing file", cfg: tlsclient.Config{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, want: []string{"ca_file: opening", "no such file"}},
		{name: "a directory", cfg: tlsclient.Config{Enabled: true, CAFile: dir}, want: []string{"is a directory"}},
		{name: "cert without key", cfg: tlsclient.Config{Enabled: true, CertFile: dir}, want: []string{"key_file: must be set when cert_file is"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}
