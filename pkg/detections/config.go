package detections

import (
	"errors"
	"fmt"
	"time"
)

// Config is the detections section of a service's configuration (the
// loader's clickhouse.detections).
type Config struct {
	// Install installs or updates the detections wherever the service
	// applies its ClickHouse migrations (at startup, or in migrate-only
	// mode). Off: nothing is created, and nothing installed is removed.
	Install bool `koanf:"install"`
	// Database holds the detection objects; empty: the main database's
	// name + "_detections".
	Database string `koanf:"database"`
	// Refresh is how often ClickHouse runs each rule.
	Refresh time.Duration `koanf:"refresh"`
}

// DefaultConfig installs the detections, refreshing every 5 minutes, into
// <database>_detections.
func DefaultConfig() Config {
	return Config{Install: true, Refresh: DefaultRefresh}
}

// Validate reports every invalid key.
func (c Config) Validate() error {
	var errs []error
	if c.Database != "" && !identRE.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("database: %q is not a plain identifier", c.Database))
	}
	if c.Refresh < time.Second || c.Refresh%time.Second != 0 {
		errs = append(errs, fmt.Errorf("refresh: %s: want whole seconds, at least 1s", c.Refresh))
	}
	return errors.Join(errs...)
}

// Options returns the installer options for detections next to
// openai_audit_logs in database, on cluster (empty: a single node), with
// the given replica name of Replicated engines (empty: "{replica}").
func (c Config) Options(database, cluster, replicaName string) Options {
	return Options{Database: database, DetectionsDatabase: c.Database, Cluster: cluster, ReplicaName: replicaName, Refresh: c.Refresh}
}
