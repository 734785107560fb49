package app_test

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/loader/internal/app"
	"github.com/auditpipe/auditpipe/pkg/config"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := app.DefaultConfig()
	require.NoError(t, config.Validate(cfg))
}

func TestDeployConfigLoads(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "config", "loader.yaml")
	cfg := app.DefaultConfig()
	require.NoError(t, config.Load(&cfg, config.Options{File: path, EnvPrefix: "AUDITPIPE_LOADER_", Environ: func() []string {
		return []string{"AUDITPIPE_LOADER_CLICKHOUSE__PASSWORD=s3cret", "AUDITPIPE_LOADER_BATCH__MAX_ROWS=5000", "AUDITPIPE_LOADER_MEMORY__LIMIT=512MiB"}
	}}))
	require.Equal(t, "http", cfg.CH.Protocol)
	require.Equal(t, "s3cret", cfg.CH.Password.Value())
	require.Equal(t, 5000, cfg.Batch.MaxRows)
	require.Equal(t, 512*config.MiB, cfg.Memory.Limit)
	require.True(t, cfg.CH.Detections.Install)
	require.Equal(t, time.Minute, cfg.CH.Detections.Refresh)
	require.Equal(t, "default_detections", cfg.CH.DetectionOptions().WithDefaults().DetectionsDatabase)
}

func TestInvalidConfig(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.Consumer.DLQTopic = cfg.Consumer.Topic
	cfg.CH.Protocol = "grpc"
	cfg.SchemaRegistry.URLs = []string{"ftp://x"}
	cfg.CH.Detections.Refresh = 0
	err := config.Validate(cfg)
	require.ErrorContains(t, err, "dlq_topic")
	require.ErrorContains(t, err, "clickhouse.protocol")
	require.ErrorContains(t, err, "registry.urls[0]")
	require.ErrorContains(t, err, "clickhouse.detections.refresh")
}
