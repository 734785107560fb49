package geo_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/enricher/internal/geo"
	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var mumbai = mmdbgen.Network{
	Prefix: netip.MustParsePrefix("163.116.213.0/24"), Country: "IN", CountryName: "India", City: "Mumbai",
	Region: "Maharashtra", RegionCode: "MH", PostalCode: "400001", TimeZone: "Asia/Kolkata",
	Latitude: 19.07283, Longitude: 72.88261, ASN: 55256, ASOrg: "NETSKOPE", ISP: "Netskope",
	Organization: "Netskope Inc", ConnectionType: "Corporate", UserType: "business",
}

var berlin6 = mmdbgen.Network{
	Prefix: netip.MustParsePrefix("2003:e5:1f00::/48"), Country: "DE", City: "Berlin", Region: "Land Berlin", RegionCode: "BE",
	Latitude: 52.52, Longitude: 13.405, ASN: 3320, ASOrg: "Deutsche Telekom AG", ISP: "Deutsche Telekom",
	ConnectionType: "Cable/DSL", UserType: "residential",
}

func allPaths(p mmdbgen.Paths) geo.Config {
	cfg := geo.DefaultConfig()
	cfg.City, cfg.ASN, cfg.ISP, cfg.ConnectionType, cfg.Enterprise = p.City, p.ASN, p.ISP, p.ConnectionType, p.Enterprise
	return cfg
}

func newEnricher(t *testing.T, cfg geo.Config, reg prometheus.Registerer) *geo.Enricher {
	t.Helper()
	e, err := geo.New(cfg, nil, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return e
}

func TestApplyAllDatabasesIPv4AndIPv6(t *testing.T) {
	p, err := mmdbgen.Write(t.TempDir(), []mmdbgen.Network{mumbai, berlin6})
	require.NoError(t, err)
	e := newEnricher(t, allPaths(p), nil)
	require.NoError(t, e.Ready())

	tests := []struct {
		addr string
		want schema.AuditLog
		n    int
	}{
		{"163.116.213.142", schema.AuditLog{SrcIP: "163.116.213.142", SrcASCountryCode: "IN", SrcCity: "Mumbai", SrcLatitude: 19.07283, SrcLongitude: 72.88261,
			SrcASNumber: 55256, SrcASOrganization: "NETSKOPE", SrcISP: "Netskope", SrcConnectionType: "Corporate", SrcUserType: "business"}, 5},
		{"2003:e5:1f00::7", schema.AuditLog{SrcIP: "2003:e5:1f00::7", SrcASCountryCode: "DE", SrcCity: "Berlin", SrcLatitude: 52.52, SrcLongitude: 13.405,
			SrcASNumber: 3320, SrcASOrganization: "Deutsche Telekom AG", SrcISP: "Deutsche Telekom", SrcConnectionType: "Cable/DSL", SrcUserType: "residential"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			l := schema.AuditLog{SrcIP: tt.addr}
			e.Apply(&l, netip.MustParseAddr(tt.addr), normalize.IPDetails{})
			enr := l.Enrichments
			l.Enrichments = nil
			assert.Equal(t, tt.want, l)
			require.Len(t, enr, tt.n)
			for _, en := range enr {
				assert.Equal(t, geo.ProviderMaxMind, en.Provider)
				assert.Equal(t, tt.addr, en.Value)
				assert.Equal(t, geo.TypeIP, en.Type)
			}
			assert.Equal(t, geo.NameGeoIP, enr[0].Name)
			assert.Equal(t, tt.want.SrcCity, enr[0].Data["city"])
			assert.Equal(t, "city", enr[0].Data["database"])
		})
	}
}

func TestEnterpriseAloneFillsEverything(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ent.mmdb")
	require.NoError(t, mmdbgen.WriteFile(path, mmdbgen.Enterprise, []mmdbgen.Network{mumbai}, time.Now()))
	cfg := geo.DefaultConfig()
	cfg.Enterprise = path
	e := newEnricher(t, cfg, nil)
	var l schema.AuditLog
	e.Apply(&l, netip.MustParseAddr("163.116.213.1"), normalize.IPDetails{})
	assert.Equal(t, "IN", l.SrcASCountryCode)
	assert.Equal(t, int64(55256), l.SrcASNumber)
	assert.Equal(t, "Netskope", l.SrcISP)
	assert.Equal(t, "Corporate", l.SrcConnectionType)
	assert.Equal(t, "business", l.SrcUserType)
}

func TestFallbackToOpenAIAndDisagreement(t *testing.T) {
	p, err := mmdbgen.Write(t.TempDir(), []mmdbgen.Network{mumbai})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	e := newEnricher(t, allPaths(p), reg)

	details := normalize.IPDetails{Country: "US", City: "Boardman", Region: "Oregon", RegionCode: "OR", ASN: 16509, Latitude: 45.8, Longitude: -119.7, HasCoords: true}

	// Not covered by any database: OpenAI's data, provider openai.
	var l schema.AuditLog
	e.Apply(&l, netip.MustParseAddr("44.230.16.9"), details)
	assert.Equal(t, "US", l.SrcASCountryCode)
	assert.Equal(t, "Boardman", l.SrcCity)
	assert.Equal(t, int64(16509), l.SrcASNumber)
	assert.InDelta(t, 45.8, l.SrcLatitude, 1e-9)
	require.Len(t, l.Enrichments, 2)
	for _, en := range l.Enrichments {
		assert.Equal(t, geo.ProviderOpenAI, en.Provider)
		assert.Equal(t, "44.230.16.9", en.Value)
	}
	assert.Equal(t, map[string]string{"asn": "16509"}, l.Enrichments[1].Data)

	// Covered: MaxMind wins and the differing country is counted.
	var m schema.AuditLog
	e.Apply(&m, netip.MustParseAddr("163.116.213.9"), details)
	assert.Equal(t, "IN", m.SrcASCountryCode)
	assert.Equal(t, int64(55256), m.SrcASNumber)
	for _, en := range m.Enrichments {
		assert.Equal(t, geo.ProviderMaxMind, en.Provider)
	}
	assert.InDelta(t, 1, value(t, reg, "auditpipe_enricher_geo_country_disagreements_total"), 0)

	// The same country does not count.
	e.Apply(&schema.AuditLog{}, netip.MustParseAddr("163.116.213.9"), normalize.IPDetails{Country: "in"})
	assert.InDelta(t, 1, value(t, reg, "auditpipe_enricher_geo_country_disagreements_total"), 0)

	// No address: nothing.
	var n schema.AuditLog
	e.Apply(&n, netip.Addr{}, details)
	assert.Empty(t, n.Enrichments)
}

// value returns the value of a registered metric's first series (counter
// or gauge).
func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestNoDatabasesUsesOpenAIOnly(t *testing.T) {
	e := newEnricher(t, geo.DefaultConfig(), nil)
	require.NoError(t, e.Ready())
	var l schema.AuditLog
	e.Apply(&l, netip.MustParseAddr("163.116.213.9"), normalize.IPDetails{Country: "IN", City: "Mumbai"})
	assert.Equal(t, "Mumbai", l.SrcCity)
	require.Len(t, l.Enrichments, 1)
	assert.Equal(t, geo.ProviderOpenAI, l.Enrichments[0].Provider)
}

func TestReloadOnReplacement(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	built := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, mmdbgen.WriteFile(path, mmdbgen.City, []mmdbgen.Network{mumbai}, built))
	cfg := geo.DefaultConfig()
	cfg.City = path
	cfg.CloseGrace = 0
	reg := prometheus.NewPedanticRegistry()
	e := newEnricher(t, cfg, reg)
	addr := netip.MustParseAddr("163.116.213.5")
	assert.Equal(t, "Mumbai", e.Lookup(addr).City)
	assert.Equal(t, "Mumbai", e.Lookup(addr).City) // cached

	moved := mumbai
	moved.City = "Pune"
	require.NoError(t, mmdbgen.WriteFile(path, mmdbgen.City, []mmdbgen.Network{moved}, built.Add(24*time.Hour)))
	e.Reload()
	assert.Equal(t, "Pune", e.Lookup(addr).City, "the cache must not serve the replaced database")
	e.Reload() // closes the retired reader (grace 0)

	// A broken replacement keeps the loaded database.
	require.NoError(t, os.WriteFile(path+".tmp", []byte("not a database"), 0o644))
	require.NoError(t, os.Rename(path+".tmp", path))
	e.Reload()
	assert.Equal(t, "Pune", e.Lookup(addr).City)
	require.NoError(t, e.Ready())

	assert.Equal(t, 1, testutil.CollectAndCount(reg, "auditpipe_enricher_geo_database_load_errors_total"))
	assert.InDelta(t, float64(built.Add(24*time.Hour).Unix()), value(t, reg, "auditpipe_enricher_geo_database_build_timestamp_seconds"), 0)
	assert.Greater(t, value(t, reg, "auditpipe_enricher_geo_database_build_age_seconds"), float64(30*24*3600))
}

func TestMissingFileBecomesReady(t *testing.T) {
	dir := t.TempDir()
	cfg := geo.DefaultConfig()
	cfg.ASN = filepath.Join(dir, "asn.mmdb")
	e := newEnricher(t, cfg, nil)
	require.Error(t, e.Ready())
	require.NoError(t, mmdbgen.WriteFile(cfg.ASN, mmdbgen.ASN, []mmdbgen.Network{mumbai}, time.Now()))
	e.Reload()
	require.NoError(t, e.Ready())
	assert.Equal(t, int64(55256), e.Lookup(netip.MustParseAddr("163.116.213.5")).ASN)
}

func TestWrongDatabaseTypeIsRejected(t *testing.T) {
	dir := t.TempDir()
	p, err := mmdbgen.Write(dir, []mmdbgen.Network{mumbai})
	require.NoError(t, err)
	cfg := geo.DefaultConfig()
	cfg.City = p.ConnectionType // a Connection-Type file where a City one belongs
	e := newEnricher(t, cfg, nil)
	require.Error(t, e.Ready())
}

func TestCacheIsBounded(t *testing.T) {
	p, err := mmdbgen.Write(t.TempDir(), []mmdbgen.Network{mumbai})
	require.NoError(t, err)
	cfg := allPaths(p)
	cfg.CacheSize = 2
	reg := prometheus.NewPedanticRegistry()
	e := newEnricher(t, cfg, reg)
	for _, a := range []string{"163.116.213.1", "163.116.213.2", "163.116.213.3", "163.116.213.3", "163.116.213.1"} {
		assert.Equal(t, "Mumbai", e.Lookup(netip.MustParseAddr(a)).City)
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "auditpipe_enricher_geo_cache_requests_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	// .1 was evicted by .3, so only the repeated .3 hits.
	assert.Equal(t, map[string]float64{"hit": 1, "miss": 4}, got)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, geo.DefaultConfig().Validate())
	bad := geo.Config{CacheSize: -1, CloseGrace: -1}
	err := bad.Validate()
	require.Error(t, err)
	for _, k := range []string{"reload_interval", "close_grace", "cache_size", "max_age"} {
		assert.Contains(t, err.Error(), k)
	}
}
