package devstack

import (
	"fmt"
	"os"

	"github.com/auditpipe/auditpipe/pkg/dev/mmdbgen"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// GeoIPPaths are the synthetic databases' files.
type GeoIPPaths = mmdbgen.Paths

// GeoNetworks returns the simulator's address blocks in the shape the GeoIP
// generator takes, so the databases cover exactly the addresses simulated
// sessions come from.
func GeoNetworks() []mmdbgen.Network {
	var out []mmdbgen.Network
	for _, n := range openaisim.Networks() {
		out = append(out, mmdbgen.Network{
			Prefix:         n.CIDR,
			Country:        n.Country,
			CountryName:    n.CountryName,
			Continent:      n.Continent,
			City:           n.City,
			Region:         n.Region,
			RegionCode:     n.RegionCode,
			PostalCode:     n.PostalCode,
			TimeZone:       n.TimeZone,
			Latitude:       n.Lat,
			Longitude:      n.Lon,
			ASN:            n.ASN,
			ASOrg:          n.ASOrg,
			ISP:            n.ISP,
			Organization:   n.ASOrg,
			ConnectionType: n.ConnectionType,
			UserType:       n.UserType,
		})
	}
	return out
}

// writeGeoIP writes the City, ASN, ISP, Connection-Type and Enterprise
// databases covering the simulator's networks into dir.
func writeGeoIP(dir string) (GeoIPPaths, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return GeoIPPaths{}, fmt.Errorf("creating GeoIP directory: %w", err)
	}
	p, err := mmdbgen.Write(dir, GeoNetworks())
	if err != nil {
		return GeoIPPaths{}, fmt.Errorf("writing synthetic GeoIP databases: %w", err)
	}
	return p, nil
}
