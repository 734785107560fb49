package mmdbgen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// Network is one prefix and the facts the generated databases report for
// every address in it. Empty strings and zero numbers are left out of the
// records, so a Network can describe a partial entry.
type Network struct {
	Prefix netip.Prefix

	// Location (City and Enterprise databases).
	Country     string // ISO 3166-1 alpha-2 code
	CountryName string // English name
	Continent   string // two-letter continent code
	City        string
	Region      string // first subdivision, English name
	RegionCode  string // first subdivision ISO code
	PostalCode  string
	TimeZone    string
	Latitude    float64
	Longitude   float64

	// Network (ASN, ISP, Connection-Type and Enterprise databases).
	ASN            uint32
	ASOrg          string
	ISP            string
	Organization   string
	ConnectionType string // "Cable/DSL", "Corporate", "Cellular", ...
	UserType       string // "residential", "business", "hosting", ...
}

// Kind is a database shape; its value is the metadata database_type that
// geoip2-golang recognises.
type Kind string

// The five database shapes Write produces.
const (
	City           Kind = "GeoIP2-City"
	ASN            Kind = "GeoLite2-ASN"
	ISP            Kind = "GeoIP2-ISP"
	ConnectionType Kind = "GeoIP2-Connection-Type"
	Enterprise     Kind = "GeoIP2-Enterprise"
)

// Kinds lists every Kind in a fixed order.
func Kinds() []Kind { return []Kind{City, ASN, ISP, ConnectionType, Enterprise} }

// FileName is the file name Write uses for k, e.g. "GeoIP2-City.mmdb".
func (k Kind) FileName() string { return string(k) + ".mmdb" }

// FileMode is the mode of every database written: readable by all.
const FileMode os.FileMode = 0o644

// Paths are the files Write wrote.
type Paths struct {
	City           string
	ASN            string
	ISP            string
	ConnectionType string
	Enterprise     string
}

// Write writes all five databases for nets into dir (which must exist),
// built now. See WriteAt.
func Write(dir string, nets []Network) (Paths, error) {
	return WriteAt(dir, nets, time.Now())
}

// WriteAt writes all five databases for nets into dir (which must exist)
// with build epoch built, replacing existing files atomically (write to a
// temporary file, then rename), and returns their paths.
func WriteAt(dir string, nets []Network, built time.Time) (Paths, error) {
	p := Paths{
		City:           filepath.Join(dir, City.FileName()),
		ASN:            filepath.Join(dir, ASN.FileName()),
		ISP:            filepath.Join(dir, ISP.FileName()),
		ConnectionType: filepath.Join(dir, ConnectionType.FileName()),
		Enterprise:     filepath.Join(dir, Enterprise.FileName()),
	}
	for _, w := range []struct {
		path string
		kind Kind
	}{{p.City, City}, {p.ASN, ASN}, {p.ISP, ISP}, {p.ConnectionType, ConnectionType}, {p.Enterprise, Enterprise}} {
		if err := WriteFile(w.path, w.kind, nets, built); err != nil {
			return Paths{}, err
		}
	}
	return p, nil
}

// WriteFile writes one database of shape kind for nets to path with build
// epoch built, atomically replacing any existing file. Later networks
// override earlier ones where they overlap. The file is mode 0644, as
// geoipupdate leaves MaxMind's: a service running as another user (the
// images' 65532) reads databases written by root.
func WriteFile(path string, kind Kind, nets []Network, built time.Time) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		BuildEpoch:              built.Unix(),
		DatabaseType:            string(kind),
		Description:             map[string]string{"en": "auditpipe synthetic " + string(kind)},
		Languages:               []string{"en"},
		IPVersion:               6,
		RecordSize:              28,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return fmt.Errorf("creating %s tree: %w", kind, err)
	}
	for _, n := range nets {
		if !n.Prefix.IsValid() {
			return fmt.Errorf("writing %s: invalid prefix %v", kind, n.Prefix)
		}
		rec := Record(kind, n)
		if len(rec) == 0 {
			continue
		}
		pfx := n.Prefix.Masked()
		ipnet := &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}
		if err := tree.Insert(ipnet, rec); err != nil {
			return fmt.Errorf("inserting %s into %s: %w", pfx, kind, err)
		}
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".mmdbgen-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tree.WriteTo(tmp)
	merr := tmp.Chmod(FileMode) // CreateTemp makes it 0600
	cerr := tmp.Close()
	if err := errors.Join(werr, merr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return nil
}

// Record returns the data record kind stores for n, in MaxMind's layout
// (the keys geoip2-golang decodes). It is empty when n has nothing for
// that shape.
func Record(kind Kind, n Network) mmdbtype.Map {
	m := mmdbtype.Map{}
	switch kind {
	case City:
		addLocation(m, n)
	case ASN:
		addASN(m, n)
	case ISP:
		addASN(m, n)
		putString(m, "isp", n.ISP)
		putString(m, "organization", n.Organization)
	case ConnectionType:
		putString(m, "connection_type", n.ConnectionType)
	case Enterprise:
		addLocation(m, n)
		traits := mmdbtype.Map{}
		addASN(traits, n)
		putString(traits, "isp", n.ISP)
		putString(traits, "organization", n.Organization)
		putString(traits, "connection_type", n.ConnectionType)
		putString(traits, "user_type", n.UserType)
		if len(traits) > 0 {
			m["traits"] = traits
		}
	}
	return m
}

func addASN(m mmdbtype.Map, n Network) {
	if n.ASN != 0 {
		m["autonomous_system_number"] = mmdbtype.Uint32(n.ASN)
	}
	putString(m, "autonomous_system_organization", n.ASOrg)
}

func addLocation(m mmdbtype.Map, n Network) {
	if n.Country != "" || n.CountryName != "" {
		c := mmdbtype.Map{}
		putString(c, "iso_code", n.Country)
		putNames(c, n.CountryName)
		m["country"] = c
		m["registered_country"] = c
	}
	if n.Continent != "" {
		m["continent"] = mmdbtype.Map{"code": mmdbtype.String(n.Continent)}
	}
	if n.City != "" {
		c := mmdbtype.Map{}
		putNames(c, n.City)
		m["city"] = c
	}
	if n.Region != "" || n.RegionCode != "" {
		s := mmdbtype.Map{}
		putString(s, "iso_code", n.RegionCode)
		putNames(s, n.Region)
		m["subdivisions"] = mmdbtype.Slice{s}
	}
	if n.PostalCode != "" {
		m["postal"] = mmdbtype.Map{"code": mmdbtype.String(n.PostalCode)}
	}
	if n.Latitude != 0 || n.Longitude != 0 || n.TimeZone != "" {
		loc := mmdbtype.Map{}
		if n.Latitude != 0 || n.Longitude != 0 {
			loc["latitude"] = mmdbtype.Float64(n.Latitude)
			loc["longitude"] = mmdbtype.Float64(n.Longitude)
			loc["accuracy_radius"] = mmdbtype.Uint16(20)
		}
		putString(loc, "time_zone", n.TimeZone)
		m["location"] = loc
	}
}

func putString(m mmdbtype.Map, key, v string) {
	if v != "" {
		m[mmdbtype.String(key)] = mmdbtype.String(v)
	}
}

func putNames(m mmdbtype.Map, en string) {
	if en != "" {
		m["names"] = mmdbtype.Map{"en": mmdbtype.String(en)}
	}
}

// SimulatorNetworks returns openaisim.Networks() as Networks, so databases
// written from it cover every address the simulator's sessions use and
// agree with the ip_address_details it reports.
func SimulatorNetworks() []Network {
	sim := openaisim.Networks()
	out := make([]Network, 0, len(sim))
	for _, s := range sim {
		out = append(out, Network{
			Prefix:         s.CIDR,
			Country:        s.Country,
			CountryName:    s.CountryName,
			Continent:      s.Continent,
			City:           s.City,
			Region:         s.Region,
			RegionCode:     s.RegionCode,
			PostalCode:     s.PostalCode,
			TimeZone:       s.TimeZone,
			Latitude:       s.Lat,
			Longitude:      s.Lon,
			ASN:            s.ASN,
			ASOrg:          s.ASOrg,
			ISP:            s.ISP,
			Organization:   s.ASOrg,
			ConnectionType: s.ConnectionType,
			UserType:       s.UserType,
		})
	}
	return out
}
