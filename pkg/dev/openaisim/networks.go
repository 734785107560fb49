package openaisim

import (
	"net/netip"
	"strconv"
)

// Network is one address block the generator draws session IP addresses
// from, with the geography and ownership the simulator reports for it in
// ip_address_details. Tests can build GeoIP/ASN databases covering exactly
// these prefixes (see Networks).
//
// The prefixes are public-looking (they lie in the real allocations of the
// named operators, outside every special-purpose range) but the city data is
// this package's own and need not match any commercial GeoIP database.
type Network struct {
	// CIDR is the prefix addresses are drawn from (IPv4 /24 or IPv6 /48).
	CIDR netip.Prefix
	// Country is the ISO 3166-1 alpha-2 code (ip_address_details.country).
	Country string
	// CountryName is the English country name.
	CountryName string
	// Continent is the two-letter continent code (NA, EU, AS, SA, OC).
	Continent string
	// City is the English city name (ip_address_details.city).
	City string
	// Region is the first-level subdivision name (ip_address_details.region).
	Region string
	// RegionCode is the ISO 3166-2 subdivision code without the country
	// prefix (ip_address_details.region_code).
	RegionCode string
	// PostalCode is a representative postal code of the city.
	PostalCode string
	// TimeZone is the IANA time zone of the city.
	TimeZone string
	// ASN is the autonomous system number (ip_address_details.asn, as a
	// decimal string).
	ASN uint32
	// ASOrg is the autonomous system organization.
	ASOrg string
	// ISP is the internet service provider name.
	ISP string
	// ConnectionType is a GeoIP2 connection type: "Cable/DSL", "Corporate",
	// "Cellular".
	ConnectionType string
	// UserType is a GeoIP2 user type: "residential", "business", "hosting",
	// "cellular".
	UserType string
	// Lat and Lon are the city coordinates (ip_address_details.latitude and
	// .longitude, formatted with five decimals).
	Lat, Lon float64
}

// Latitude is Lat as the string ip_address_details carries.
func (n Network) Latitude() string { return strconv.FormatFloat(n.Lat, 'f', 5, 64) }

// Longitude is Lon as the string ip_address_details carries.
func (n Network) Longitude() string { return strconv.FormatFloat(n.Lon, 'f', 5, 64) }

// place is one city with its operator, from which one IPv4 and one IPv6
// Network are derived.
type place struct {
	v4, v6                               string
	country, countryName, continent      string
	city, region, regionCode, postal, tz string
	asn                                  uint32
	asOrg, isp, connType, userType       string
	lat, lon                             float64
}

// places is the fixed list behind Networks. Append only: the generator's
// output for a seed depends on the order.
var places = []place{
	{"73.189.72.0/24", "2601:646:8a01::/48", "US", "United States", "NA", "San Francisco", "California", "CA", "94107", "America/Los_Angeles", 7922, "Comcast Cable Communications, LLC", "Comcast Cable", "Cable/DSL", "residential", 37.77490, -122.41940},
	{"100.33.14.0/24", "2600:4040:2a10::/48", "US", "United States", "NA", "New York", "New York", "NY", "10001", "America/New_York", 701, "Verizon Business", "Verizon Fios", "Cable/DSL", "residential", 40.71280, -74.00600},
	{"44.230.16.0/24", "2600:1f14:abc::/48", "US", "United States", "NA", "Boardman", "Oregon", "OR", "97818", "America/Los_Angeles", 16509, "Amazon.com, Inc.", "Amazon.com", "Corporate", "hosting", 45.83990, -119.70060},
	{"3.85.112.0/24", "2600:1f18:4a2::/48", "US", "United States", "NA", "Ashburn", "Virginia", "VA", "20149", "America/New_York", 14618, "Amazon.com, Inc.", "Amazon AES", "Corporate", "hosting", 39.04380, -77.48740},
	{"163.116.213.0/24", "2a10:50c0:1::/48", "IN", "India", "AS", "Mumbai", "Maharashtra", "MH", "400001", "Asia/Kolkata", 55256, "NETSKOPE", "Netskope", "Corporate", "business", 19.07283, 72.88261},
	{"86.128.14.0/24", "2a00:23c6:9a1c::/48", "GB", "United Kingdom", "EU", "London", "England", "ENG", "EC1A", "Europe/London", 2856, "British Telecommunications PLC", "BT", "Cable/DSL", "residential", 51.50720, -0.12760},
	{"87.161.40.0/24", "2003:e5:1f00::/48", "DE", "Germany", "EU", "Berlin", "Land Berlin", "BE", "10115", "Europe/Berlin", 3320, "Deutsche Telekom AG", "Deutsche Telekom", "Cable/DSL", "residential", 52.52000, 13.40500},
	{"90.12.80.0/24", "2a01:cb00:81e::/48", "FR", "France", "EU", "Paris", "Île-de-France", "IDF", "75001", "Europe/Paris", 3215, "Orange S.A.", "Orange", "Cable/DSL", "residential", 48.85660, 2.35220},
	{"106.128.40.0/24", "2001:268:c0a1::/48", "JP", "Japan", "AS", "Tokyo", "Tokyo", "13", "100-0001", "Asia/Tokyo", 2516, "KDDI CORPORATION", "KDDI", "Cellular", "cellular", 35.67620, 139.65030},
	{"116.86.12.0/24", "2406:3003:2001::/48", "SG", "Singapore", "AS", "Singapore", "Central Singapore", "01", "018989", "Asia/Singapore", 3758, "SingNet Pte Ltd", "SingNet", "Cable/DSL", "business", 1.35210, 103.81980},
	{"177.139.64.0/24", "2804:14c:65a1::/48", "BR", "Brazil", "SA", "São Paulo", "São Paulo", "SP", "01000-000", "America/Sao_Paulo", 28573, "Claro NXT Telecomunicacoes Ltda", "Claro Brasil", "Cable/DSL", "residential", -23.55050, -46.63330},
	{"110.142.32.0/24", "2001:8003:2c4a::/48", "AU", "Australia", "OC", "Sydney", "New South Wales", "NSW", "2000", "Australia/Sydney", 1221, "Telstra Limited", "Telstra", "Cable/DSL", "residential", -33.86880, 151.20930},
	{"99.224.8.0/24", "2607:fea8:1f40::/48", "CA", "Canada", "NA", "Toronto", "Ontario", "ON", "M5H", "America/Toronto", 812, "Rogers Communications Canada Inc.", "Rogers", "Cable/DSL", "residential", 43.65320, -79.38320},
	{"122.171.16.0/24", "2401:4900:1c5a::/48", "IN", "India", "AS", "Bengaluru", "Karnataka", "KA", "560001", "Asia/Kolkata", 24560, "Bharti Airtel Ltd.", "Airtel", "Cellular", "cellular", 12.97160, 77.59460},
	{"88.198.100.0/24", "2a01:4f8:1c1e::/48", "DE", "Germany", "EU", "Nuremberg", "Bavaria", "BY", "90402", "Europe/Berlin", 24940, "Hetzner Online GmbH", "Hetzner Online", "Corporate", "hosting", 49.45210, 11.07670},
	{"20.105.200.0/24", "2603:1020:200::/48", "IE", "Ireland", "EU", "Dublin", "Leinster", "L", "D02", "Europe/Dublin", 8075, "Microsoft Corporation", "Microsoft Azure", "Corporate", "hosting", 53.34980, -6.26030},
}

// networks is derived from places once; index 2i is the IPv4 block of
// places[i] and 2i+1 its IPv6 block.
var networks = func() []Network {
	out := make([]Network, 0, 2*len(places))
	for _, p := range places {
		for _, cidr := range []string{p.v4, p.v6} {
			out = append(out, Network{
				CIDR:           netip.MustParsePrefix(cidr),
				Country:        p.country,
				CountryName:    p.countryName,
				Continent:      p.continent,
				City:           p.city,
				Region:         p.region,
				RegionCode:     p.regionCode,
				PostalCode:     p.postal,
				TimeZone:       p.tz,
				ASN:            p.asn,
				ASOrg:          p.asOrg,
				ISP:            p.isp,
				ConnectionType: p.connType,
				UserType:       p.userType,
				Lat:            p.lat,
				Lon:            p.lon,
			})
		}
	}
	return out
}()

// Networks returns every block the generator draws session addresses from,
// IPv4 and IPv6, in a fixed order. The returned slice is a copy. Every
// generated session's ip_address lies in exactly one of these prefixes and its
// ip_address_details equal that Network's fields.
func Networks() []Network {
	return append([]Network(nil), networks...)
}

// NetworkFor returns the Network whose prefix contains addr.
func NetworkFor(addr netip.Addr) (Network, bool) {
	addr = addr.Unmap()
	for _, n := range networks {
		if n.CIDR.Contains(addr) {
			return n, true
		}
	}
	return Network{}, false
}
