package mmdbgen_test

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
)

func TestWriteAtReadsBackWithGeoIP2(t *testing.T) {
	nets := []mmdbgen.Network{
		{
			Prefix: netip.MustParsePrefix("163.116.213.0/24"), Country: "IN", CountryName: "India", Continent: "AS",
			City: "Mumbai", Region: "Maharashtra", RegionCode: "MH", PostalCode: "400001", TimeZone: "Asia/Kolkata",
			Latitude: 19.07283, Longitude: 72.88261, ASN: 55256, ASOrg: "NETSKOPE", ISP: "Netskope",
			Organization: "Netskope Inc", ConnectionType: "Corporate", UserType: "business",
		},
		{
			Prefix: netip.MustParsePrefix("2a10:50c0:1::/48"), Country: "DE", City: "Berlin",
			Latitude: 52.52, Longitude: 13.405, ASN: 3320, ASOrg: "Deutsche Telekom AG", UserType: "residential",
		},
	}
	built := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p, err := mmdbgen.WriteAt(t.TempDir(), nets, built)
	require.NoError(t, err)

	open := func(path string) *geoip2.Reader {
		r, err := geoip2.Open(path)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		assert.Equal(t, uint(built.Unix()), r.Metadata().BuildEpoch)
		return r
	}
	v4 := netip.MustParseAddr("163.116.213.142")
	v6 := netip.MustParseAddr("2a10:50c0:1::42")

	city, err := open(p.City).City(v4)
	require.NoError(t, err)
	assert.Equal(t, "IN", city.Country.ISOCode)
	assert.Equal(t, "Mumbai", city.City.Names.English)
	assert.Equal(t, "MH", city.Subdivisions[0].ISOCode)
	require.NotNil(t, city.Location.Latitude)
	assert.InDelta(t, 19.07283, *city.Location.Latitude, 1e-9)

	asn, err := open(p.ASN).ASN(v4)
	require.NoError(t, err)
	assert.Equal(t, uint(55256), asn.AutonomousSystemNumber)
	assert.Equal(t, "NETSKOPE", asn.AutonomousSystemOrganization)

	isp, err := open(p.ISP).ISP(v4)
	require.NoError(t, err)
	assert.Equal(t, "Netskope", isp.ISP)
	assert.Equal(t, uint(55256), isp.AutonomousSystemNumber)

	ct, err := open(p.ConnectionType).ConnectionType(v4)
	require.NoError(t, err)
	assert.Equal(t, "Corporate", ct.ConnectionType)

	ent := open(p.Enterprise)
	e, err := ent.Enterprise(v4)
	require.NoError(t, err)
	assert.Equal(t, "business", e.Traits.UserType)
	assert.Equal(t, "Mumbai", e.City.Names.English)
	e6, err := ent.Enterprise(v6)
	require.NoError(t, err)
	assert.Equal(t, "residential", e6.Traits.UserType)
	assert.Equal(t, "DE", e6.Country.ISOCode)

	miss, err := ent.Enterprise(netip.MustParseAddr("198.51.100.1"))
	require.NoError(t, err)
	assert.False(t, miss.HasData())
}

func TestSimulatorNetworksCoverSimulatorPrefixes(t *testing.T) {
	nets := mmdbgen.SimulatorNetworks()
	require.NotEmpty(t, nets)
	p, err := mmdbgen.Write(t.TempDir(), nets)
	require.NoError(t, err)
	r, err := geoip2.Open(p.City)
	require.NoError(t, err)
	defer r.Close()
	for _, n := range nets {
		c, err := r.City(n.Prefix.Addr().Next())
		require.NoError(t, err)
		assert.Equal(t, n.Country, c.Country.ISOCode, n.Prefix)
		assert.Equal(t, n.City, c.City.Names.English, n.Prefix)
	}
}

func TestWriteFileRejectsInvalidPrefix(t *testing.T) {
	err := mmdbgen.WriteFile(t.TempDir()+"/x.mmdb", mmdbgen.City, []mmdbgen.Network{{Country: "US"}}, time.Now())
	require.Error(t, err)
}

// TestFilesAreReadableByAll: the images run as user 65532 and read the
// databases a root-run dev stack writes (CreateTemp alone makes them 0600).
func TestFilesAreReadableByAll(t *testing.T) {
	dir := t.TempDir()
	p, err := mmdbgen.Write(dir, mmdbgen.SimulatorNetworks())
	require.NoError(t, err)
	// Rewriting an existing file keeps the mode too.
	p, err = mmdbgen.Write(dir, mmdbgen.SimulatorNetworks())
	require.NoError(t, err)
	for _, path := range []string{p.City, p.ASN, p.ISP, p.ConnectionType, p.Enterprise} {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, mmdbgen.FileMode, fi.Mode().Perm(), path)
		assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "%s: readable by every user", path)
	}
}
