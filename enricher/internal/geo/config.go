package geo

import (
	"errors"
	"time"
)

// Config selects the databases and tunes reloading and caching. Every path
// is optional; an empty one disables that database.
type Config struct {
	// City is a GeoIP2/GeoLite2 City (or Country, or DB-IP City Lite)
	// database: country, city, coordinates.
	City string `koanf:"city"`
	// ASN is a GeoLite2-ASN (or DB-IP ASN Lite) database.
	ASN string `koanf:"asn"`
	// ISP is a GeoIP2-ISP database: ISP, organization, ASN.
	ISP string `koanf:"isp"`
	// ConnectionType is a GeoIP2-Connection-Type database.
	ConnectionType string `koanf:"connection_type"`
	// Enterprise is a GeoIP2-Enterprise database: location, network traits
	// and the user type (srcUserType).
	Enterprise string `koanf:"enterprise"`
	// ReloadInterval is how often the files are checked for replacement
	// (modification time, size, inode).
	ReloadInterval time.Duration `koanf:"reload_interval"`
	// CloseGrace is how long a replaced database stays open for lookups
	// already running on it.
	CloseGrace time.Duration `koanf:"close_grace"`
	// CacheSize bounds the lookup cache (addresses, about 2 KB each); 0
	// disables it.
	CacheSize int `koanf:"cache_size"`
	// MaxAge is the build age past which a database is logged as stale at
	// every check.
	MaxAge time.Duration `koanf:"max_age"`
}

// DefaultConfig has no databases, checks for new files every minute,
// closes old ones after 30 s, caches 65,536 addresses and warns about
// databases built more than 30 days ago.
func DefaultConfig() Config {
	return Config{
		ReloadInterval: time.Minute,
		CloseGrace:     30 * time.Second,
		CacheSize:      4096,
		MaxAge:         30 * 24 * time.Hour,
	}
}

// Validate reports every invalid field, named by key.
func (c Config) Validate() error {
	var errs []error
	if c.ReloadInterval <= 0 {
		errs = append(errs, errors.New("reload_interval: must be positive"))
	}
	if c.CloseGrace < 0 {
		errs = append(errs, errors.New("close_grace: must not be negative"))
	}
	if c.CacheSize < 0 {
		errs = append(errs, errors.New("cache_size: must not be negative"))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, errors.New("max_age: must be positive"))
	}
	return errors.Join(errs...)
}
