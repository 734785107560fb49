package chwriter

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/schema"
	"github.com/auditpipe/auditpipe/pkg/tlsclient"
)

// Protocols accepted in Config.Protocol. HTTP is the default: it is the
// protocol every test runs against the embedded ClickHouse engine, so the
// default path is the tested one (docs/loader.md, "Protocol"). Native is
// supported through the same clickhouse-go calls but not exercised by the
// tests.
const (
	ProtocolNative = "native"
	ProtocolHTTP   = "http"
)

// Config is how the loader reaches ClickHouse.
type Config struct {
	// Addr lists the servers, host:port (8123/8443 HTTP, 9000/9440 native).
	Addr []string `koanf:"addr"`
	// Protocol is http (default) or native.
	Protocol string `koanf:"protocol"`
	// Database holds the table; it must exist.
	Database string `koanf:"database"`
	// User is the ClickHouse user.
	User string `koanf:"user"`
	// Password is the user's password; set it from the environment or via
	// PasswordFile, never in a YAML file.
	Password config.Secret `koanf:"password"`
	// PasswordFile names a file holding the password.
	PasswordFile string `koanf:"password_file"`
	// TLS configures encryption (HTTPS or the native TLS port).
	TLS TLSConfig `koanf:"tls"`
	// Compression of insert data: none, lz4 (default) or zstd.
	Compression string `koanf:"compression"`
	// DialTimeout bounds opening a connection.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// InsertTimeout bounds one insert, from preparing to the server's
	// acknowledgement.
	InsertTimeout time.Duration `koanf:"insert_timeout"`
	// MaxOpenConns bounds the connections to ClickHouse.
	MaxOpenConns int `koanf:"max_open_conns"`
	// OptimizeOnInsert is sent as the per-insert setting
	// optimize_on_insert. Off by default: ClickHouse's default (on) makes
	// every insert into the ReplacingMergeTree collapse duplicate sorting
	// keys within its own block, which is about half of the server's
	// insert time for this record. Background merges and FINAL collapse
	// them anyway, and copies within one batch only arise from a replay.
	OptimizeOnInsert bool `koanf:"optimize_on_insert"`
	// Cluster, when set, selects cluster mode: migrations run ON CLUSTER
	// with Replicated engines and a Distributed openai_audit_logs table,
	// and inserts go through that Distributed table synchronously.
	Cluster string `koanf:"cluster"`
	// ReplicationPath and ReplicaName configure the Replicated engines in
	// cluster mode (defaults: /clickhouse/tables/{shard}/{database} and
	// {replica}).
	ReplicationPath string `koanf:"replication_path"`
	ReplicaName     string `koanf:"replica_name"`
	// Migrate applies the schema migrations at startup. Turn it off when
	// a deploy-time step runs them (loader with migrate_only).
	Migrate bool `koanf:"migrate"`
	// Detections installs the threat detections (refreshable views in
	// their own database) wherever the migrations run.
	Detections detections.Config `koanf:"detections"`
}

// TLSConfig configures TLS towards ClickHouse; see package tlsclient.
type TLSConfig = tlsclient.Config

// DefaultConfig returns a local single node over HTTP (port 8123),
// database default, user default, lz4, migrations and detections on.
func DefaultConfig() Config {
	return Config{
		Addr:          []string{"127.0.0.1:8123"},
		Protocol:      ProtocolHTTP,
		Database:      "default",
		User:          "default",
		Compression:   "lz4",
		DialTimeout:   10 * time.Second,
		InsertTimeout: 60 * time.Second,
		MaxOpenConns:  4,
		Migrate:       true,
		Detections:    detections.DefaultConfig(),
	}
}

// MigrationOptions returns the options that render the migrations for c.
func (c Config) MigrationOptions() schema.MigrationOptions {
	return schema.MigrationOptions{Database: c.Database, Cluster: c.Cluster, ReplicationPath: c.ReplicationPath, ReplicaName: c.ReplicaName}
}

// DetectionOptions returns the options that install the detections for c.
func (c Config) DetectionOptions() detections.Options {
	return c.Detections.Options(c.Database, c.Cluster, c.ReplicaName)
}

// Validate reports every problem in c by key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, errors.New("addr: at least one host:port is required"))
	}
	for i, a := range c.Addr {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("addr[%d]: %q: want host:port", i, a))
		}
	}
	switch c.Protocol {
	case ProtocolNative, ProtocolHTTP:
	default:
		errs = append(errs, fmt.Errorf("protocol: %q: want http or native", c.Protocol))
	}
	switch c.Compression {
	case "none", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("compression: %q: want none, lz4 or zstd", c.Compression))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("dial_timeout: must be positive"))
	}
	if c.InsertTimeout <= 0 {
		errs = append(errs, errors.New("insert_timeout: must be positive"))
	}
	if c.MaxOpenConns <= 0 {
		errs = append(errs, errors.New("max_open_conns: must be positive"))
	}
	if err := c.MigrationOptions().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
