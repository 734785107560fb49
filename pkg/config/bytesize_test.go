package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/config"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want config.ByteSize
	}{
		{"256MiB", 256 << 20},
		{"256 MiB", 256 << 20},
		{"1GiB", 1 << 30},
		{"64mib", 64 << 20},
		{"300MB", 300_000_000},
		{"1048576", 1 << 20},
		{"0", 0},
	} {
		got, err := config.ParseByteSize(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
		back, err := config.ParseByteSize(got.String())
		require.NoError(t, err, got.String())
		require.Equal(t, got, back, "String must parse back")
	}
	for _, bad := range []string{"", "lots", "-1MiB", "12 parsecs"} {
		_, err := config.ParseByteSize(bad)
		require.ErrorContains(t, err, "256MiB", bad)
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"256MiB", "1 GB", "12", "0.5GiB", "1e3KB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := config.ParseByteSize(s)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, b, config.ByteSize(0))
	})
}

type sized struct {
	Limit config.ByteSize `koanf:"limit"`
}

func TestLoadByteSize(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        []string
		want       config.ByteSize
	}{
		{"default", "", nil, 128 << 20},
		{"file with unit", "limit: 256MiB\n", nil, 256 << 20},
		{"file as a number", "limit: 1048576\n", nil, 1 << 20},
		{"environment", "limit: 256MiB\n", []string{"T_LIMIT=1GiB"}, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sized{Limit: 128 << 20}
			opts := config.Options{EnvPrefix: "T_", Environ: env(tc.env...)}
			if tc.file != "" {
				opts.File = writeFile(t, "c.yaml", tc.file)
			}
			require.NoError(t, config.Load(&cfg, opts))
			require.Equal(t, tc.want, cfg.Limit)
		})
	}
	cfg := sized{}
	err := config.Load(&cfg, config.Options{EnvPrefix: "T_", Environ: env("T_LIMIT=lots")})
	require.ErrorContains(t, err, "like 256MiB")
	out, err := config.Redact(sized{Limit: 256 << 20})
	require.NoError(t, err)
	require.Equal(t, "limit: 256 MiB\n", out)
}

func TestByteSizeRoundUp(t *testing.T) {
	for _, tc := range []struct{ in, unit, want config.ByteSize }{
		{0, config.MiB, 0},
		{1, config.MiB, config.MiB},
		{config.MiB, config.MiB, config.MiB},
		{config.MiB + 1, config.MiB, 2 * config.MiB},
		{1500, config.KiB, 2 * config.KiB},
	} {
		require.Equal(t, tc.want, tc.in.RoundUp(tc.unit), "%d up to %s", int64(tc.in), tc.unit)
	}
}
