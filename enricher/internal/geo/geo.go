package geo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Kind names a database role; it is the "database" metric label.
type Kind string

// The database roles.
const (
	KindCity           Kind = "city"
	KindASN            Kind = "asn"
	KindISP            Kind = "isp"
	KindConnectionType Kind = "connection_type"
	KindEnterprise     Kind = "enterprise"
)

var kinds = []Kind{KindCity, KindASN, KindISP, KindConnectionType, KindEnterprise}

// Enrichment names, providers and type.
const (
	ProviderMaxMind = "maxmind"
	ProviderOpenAI  = "openai"
	TypeIP          = "ip"

	NameGeoIP          = "geoip"
	NameASN            = "asn"
	NameISP            = "isp"
	NameConnectionType = "connection_type"
	NameUserType       = "user_type"
)

// Info is what the databases know about one address. Each Has* flag tells
// whether that part was found.
type Info struct {
	HasLocation bool
	Country     string
	City        string
	Region      string
	RegionCode  string
	PostalCode  string
	TimeZone    string
	HasCoords   bool
	Latitude    float64
	Longitude   float64
	LocationDB  Kind

	HasASN bool
	ASN    int64
	ASOrg  string
	ASNDB  Kind

	HasISP       bool
	ISP          string
	Organization string
	ISPDB        Kind

	HasConnectionType bool
	ConnectionType    string
	ConnectionTypeDB  Kind

	UserType string // Enterprise only

	// Prebuilt MaxMind enrichments (valid where the matching Has* flag is
	// set): built once per cache miss and shared by every record of the
	// address, so their Data maps must never be modified.
	geoipEnr, asnEnr, ispEnr, connEnr, userEnr schema.Enrichment
}

// reader is one open database file.
type reader struct {
	r     *geoip2.Reader
	built time.Time
	id    fileID
}

type fileID struct {
	mtime time.Time
	size  int64
	ino   uint64
}

type database struct {
	kind Kind
	path string
	cur  atomic.Pointer[reader]
}

type retired struct {
	r       *reader
	closeAt time.Time
}

// Enricher looks addresses up and fills the src* columns and enrichments.
// Lookup and Apply are safe for concurrent use and never block on I/O; Run
// reloads replaced files.
type Enricher struct {
	cfg    Config
	logger *slog.Logger
	dbs    []*database
	cache  *cache
	none   Info // the Info of an address nothing is known about
	epoch  atomic.Uint64
	now    func() time.Time

	mu      sync.Mutex // guards retired
	retired []retired

	m metrics
}

type metrics struct {
	lookupHit, lookupMiss map[Kind]prometheus.Counter
	cacheHit, cacheMiss   prometheus.Counter
	buildAge, buildTime   *prometheus.GaugeVec
	reloadOK, reloadErr   *prometheus.CounterVec
	fallbackGeo           prometheus.Counter
	fallbackASN           prometheus.Counter
	disagree              prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_lookups_total",
		Help: "Database lookups by database and result (hit: the database has data for the address).",
	}, []string{"database", "result"})
	cacheReq := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_cache_requests_total",
		Help: "Lookup cache requests by result (hit, miss).",
	}, []string{"result"})
	m := metrics{
		lookupHit: map[Kind]prometheus.Counter{}, lookupMiss: map[Kind]prometheus.Counter{},
		cacheHit: cacheReq.WithLabelValues("hit"), cacheMiss: cacheReq.WithLabelValues("miss"),
		buildAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_database_build_age_seconds",
			Help: "Age of each loaded database since its build epoch, updated at every reload check.",
		}, []string{"database"}),
		buildTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_database_build_timestamp_seconds",
			Help: "Build epoch of each loaded database.",
		}, []string{"database"}),
		reloadOK: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_database_loads_total",
			Help: "Databases opened (at start and on replacement).",
		}, []string{"database"}),
		reloadErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_database_load_errors_total",
			Help: "Database files that could not be opened; the previous one stays in use.",
		}, []string{"database"}),
		disagree: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_country_disagreements_total",
			Help: "Addresses where MaxMind's country (used) differs from OpenAI's ip_address_details country.",
		}),
	}
	fallback := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "auditpipe", Subsystem: "enricher", Name: "geo_openai_fallback_total",
		Help: "Enrichments taken from OpenAI's ip_address_details because no database covered the address, by enrichment.",
	}, []string{"enrichment"})
	m.fallbackGeo, m.fallbackASN = fallback.WithLabelValues(NameGeoIP), fallback.WithLabelValues(NameASN)
	for _, k := range kinds {
		m.lookupHit[k] = lookups.WithLabelValues(string(k), "hit")
		m.lookupMiss[k] = lookups.WithLabelValues(string(k), "miss")
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{lookups, cacheReq, m.buildAge, m.buildTime, m.reloadOK, m.reloadErr, fallback, m.disagree} {
			if err := reg.Register(c); err != nil {
				return metrics{}, fmt.Errorf("registering geo metrics: %w", err)
			}
		}
	}
	return m, nil
}

// New opens the configured databases. A file that is missing or cannot be
// opened yet is logged and retried by Run; Ready reports it until it
// loads. reg may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating geo config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := &Enricher{cfg: cfg, logger: logger, cache: newCache(cfg.CacheSize), now: time.Now, m: m}
	for _, d := range []struct {
		k Kind
		p string
	}{{KindCity, cfg.City}, {KindASN, cfg.ASN}, {KindISP, cfg.ISP}, {KindConnectionType, cfg.ConnectionType}, {KindEnterprise, cfg.Enterprise}} {
		if d.p != "" {
			e.dbs = append(e.dbs, &database{kind: d.k, path: d.p})
		}
	}
	e.check()
	return e, nil
}

// Ready returns an error naming every configured database not loaded yet.
func (e *Enricher) Ready() error {
	var errs []error
	for _, d := range e.dbs {
		if d.cur.Load() == nil {
			errs = append(errs, fmt.Errorf("geo database %s (%s) not loaded", d.kind, d.path))
		}
	}
	return errors.Join(errs...)
}

// Databases returns the configured database roles.
func (e *Enricher) Databases() []Kind {
	out := make([]Kind, len(e.dbs))
	for i, d := range e.dbs {
		out[i] = d.kind
	}
	return out
}

// Run checks the files every ReloadInterval until ctx is done, swapping in
// replaced ones and closing retired readers after CloseGrace; then it closes
// every reader and returns nil. Stop every Lookup and Apply caller before
// ctx is done: the readers are memory-mapped. Lookups after Run returns
// find nothing.
func (e *Enricher) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.closeAll()
			return nil
		case <-t.C:
			e.check()
		}
	}
}

// Reload checks every file now (Run does it periodically).
func (e *Enricher) Reload() { e.check() }

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	id := fileID{mtime: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = st.Ino
	}
	return id, nil
}

func (e *Enricher) check() {
	now := e.now()
	for _, d := range e.dbs {
		cur := d.cur.Load()
		id, err := statID(d.path)
		switch {
		case err != nil && cur == nil:
			e.m.reloadErr.WithLabelValues(string(d.kind)).Inc()
			e.logger.Warn("geo database not available yet", slog.String("database", string(d.kind)), slog.String("path", d.path), slog.Any("error", err))
		case err != nil:
			// A file being replaced by a non-atomic copy may vanish
			// briefly; keep the loaded one.
		case cur == nil || id != cur.id:
			e.load(d, id, cur)
		}
		if cur = d.cur.Load(); cur != nil {
			age := now.Sub(cur.built)
			e.m.buildAge.WithLabelValues(string(d.kind)).Set(age.Seconds())
			if age > e.cfg.MaxAge {
				e.logger.Warn("geo database is stale", slog.String("database", string(d.kind)), slog.String("path", d.path),
					slog.Time("built", cur.built), slog.Duration("age", age.Round(time.Hour)), slog.Duration("max_age", e.cfg.MaxAge))
			}
		}
	}

	e.mu.Lock()
	kept := e.retired[:0]
	for _, r := range e.retired {
		if now.Before(r.closeAt) {
			kept = append(kept, r)
		} else {
			_ = r.r.r.Close()
		}
	}
	e.retired = kept
	e.mu.Unlock()
}

// wantType reports whether a database_type can serve kind.
func wantType(kind Kind, dbType string) bool {
	t := strings.ToLower(dbType)
	switch kind {
	case KindCity:
		return strings.Contains(t, "city") || strings.Contains(t, "country") || strings.Contains(t, "location")
	case KindASN:
		return strings.Contains(t, "asn") || strings.Contains(t, "isp")
	case KindISP:
		return strings.Contains(t, "isp")
	case KindConnectionType:
		return strings.Contains(t, "connection-type")
	case KindEnterprise:
		return strings.Contains(t, "enterprise")
	}
	return false
}

func (e *Enricher) load(d *database, id fileID, old *reader) {
	r, err := geoip2.Open(d.path)
	if err != nil && r != nil { // an unknown database type comes with a reader
		_ = r.Close()
	}
	if err == nil && !wantType(d.kind, r.Metadata().DatabaseType) {
		err = fmt.Errorf("database type %q cannot serve %s lookups", r.Metadata().DatabaseType, d.kind)
		_ = r.Close()
	}
	if err != nil {
		e.m.reloadErr.WithLabelValues(string(d.kind)).Inc()
		e.logger.Error("opening geo database", slog.String("database", string(d.kind)), slog.String("path", d.path), slog.Any("error", err))
		return
	}
	built := time.Unix(int64(r.Metadata().BuildEpoch), 0).UTC()
	d.cur.Store(&reader{r: r, built: built, id: id})
	e.epoch.Add(1)
	e.m.reloadOK.WithLabelValues(string(d.kind)).Inc()
	e.m.buildTime.WithLabelValues(string(d.kind)).Set(float64(built.Unix()))
	e.logger.Info("geo database loaded", slog.String("database", string(d.kind)), slog.String("path", d.path),
		slog.String("type", r.Metadata().DatabaseType), slog.Time("built", built), slog.Bool("replaced", old != nil))
	if old != nil {
		e.mu.Lock()
		e.retired = append(e.retired, retired{r: old, closeAt: e.now().Add(e.cfg.CloseGrace)})
		e.mu.Unlock()
	}
}

func (e *Enricher) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.retired {
		_ = r.r.r.Close()
	}
	e.retired = nil
	for _, d := range e.dbs {
		if r := d.cur.Swap(nil); r != nil {
			_ = r.r.Close()
		}
	}
	e.epoch.Add(1)
}

// Lookup returns what the loaded databases know about addr, through the
// cache.
func (e *Enricher) Lookup(addr netip.Addr) Info {
	return *e.lookupShared(addr)
}

// lookupShared is Lookup without a copy: the result may be shared with
// the cache and other callers, so it must never be modified.
func (e *Enricher) lookupShared(addr netip.Addr) *Info {
	if !addr.IsValid() || len(e.dbs) == 0 {
		return &e.none
	}
	addr = addr.Unmap()
	epoch := e.epoch.Load()
	if e.cache != nil {
		if info, ok := e.cache.get(addr, epoch); ok {
			e.m.cacheHit.Inc()
			return info
		}
		e.m.cacheMiss.Inc()
	}
	info := e.lookup(addr)
	info.build(addr.String())
	if e.cache != nil {
		e.cache.put(addr, epoch, &info)
	}
	return &info
}

func (e *Enricher) hit(k Kind, ok bool) {
	if ok {
		e.m.lookupHit[k].Inc()
	} else {
		e.m.lookupMiss[k].Inc()
	}
}

// lookup asks every loaded database about addr, in e.dbs order (City,
// ASN, ISP, Connection-Type, Enterprise), counting hits and misses, and
// merges the answers: each dedicated database sets its part, the ASN
// from the first that has one, and Enterprise fills only what the others
// left empty (UserType comes from it alone).
func (e *Enricher) lookup(addr netip.Addr) Info {
	var info Info
	for _, d := range e.dbs {
		cur := d.cur.Load()
		if cur == nil {
			continue
		}
		r := cur.r
		switch d.kind {
		case KindCity:
			e.lookupCity(r, addr, &info)
		case KindASN:
			e.lookupASN(r, addr, &info)
		case KindISP:
			e.lookupISP(r, addr, &info)
		case KindConnectionType:
			e.lookupConnectionType(r, addr, &info)
		case KindEnterprise:
			e.lookupEnterprise(r, addr, &info)
		}
	}
	return info
}

// lookupCity sets info's location from City database r, unless set.
func (e *Enricher) lookupCity(r *geoip2.Reader, addr netip.Addr, info *Info) {
	c, err := r.City(addr)
	ok := err == nil && c.HasData()
	e.hit(KindCity, ok)
	if ok {
		sub := firstSub(len(c.Subdivisions), func(i int) (string, string) {
			return c.Subdivisions[i].Names.English, c.Subdivisions[i].ISOCode
		})
		setLocation(info, KindCity, c.Country.ISOCode, c.City.Names.English, sub, c.Postal.Code, c.Location.TimeZone, c.Location.Latitude, c.Location.Longitude)
	}
}

// lookupASN sets info's ASN from ASN database r, unless set.
func (e *Enricher) lookupASN(r *geoip2.Reader, addr netip.Addr, info *Info) {
	a, err := r.ASN(addr)
	ok := err == nil && a.HasData()
	e.hit(KindASN, ok)
	if ok && !info.HasASN {
		info.HasASN, info.ASN, info.ASOrg, info.ASNDB = true, int64(a.AutonomousSystemNumber), a.AutonomousSystemOrganization, KindASN
	}
}

// lookupISP sets info's ISP from ISP database r (over any earlier one),
// and its ASN unless set.
func (e *Enricher) lookupISP(r *geoip2.Reader, addr netip.Addr, info *Info) {
	i, err := r.ISP(addr)
	ok := err == nil && i.HasData()
	e.hit(KindISP, ok)
	if ok {
		info.HasISP, info.ISP, info.Organization, info.ISPDB = true, i.ISP, i.Organization, KindISP
		if !info.HasASN && i.AutonomousSystemNumber != 0 {
			info.HasASN, info.ASN, info.ASOrg, info.ASNDB = true, int64(i.AutonomousSystemNumber), i.AutonomousSystemOrganization, KindISP
		}
	}
}

// lookupConnectionType sets info's connection type from Connection-Type
// database r (over any earlier one).
func (e *Enricher) lookupConnectionType(r *geoip2.Reader, addr netip.Addr, info *Info) {
	c, err := r.ConnectionType(addr)
	ok := err == nil && c.HasData()
	e.hit(KindConnectionType, ok)
	if ok {
		info.HasConnectionType, info.ConnectionType, info.ConnectionTypeDB = true, c.ConnectionType, KindConnectionType
	}
}

// lookupEnterprise fills from Enterprise database r every part of info
// not set yet (location, ASN, ISP, connection type), and sets UserType.
func (e *Enricher) lookupEnterprise(r *geoip2.Reader, addr netip.Addr, info *Info) {
	en, err := r.Enterprise(addr)
	ok := err == nil && en.HasData()
	e.hit(KindEnterprise, ok)
	if !ok {
		return
	}
	if !info.HasLocation {
		sub := firstSub(len(en.Subdivisions), func(i int) (string, string) {
			return en.Subdivisions[i].Names.English, en.Subdivisions[i].ISOCode
		})
		setLocation(info, KindEnterprise, en.Country.ISOCode, en.City.Names.English, sub, en.Postal.Code, en.Location.TimeZone, en.Location.Latitude, en.Location.Longitude)
	}
	tr := en.Traits
	if !info.HasASN && tr.AutonomousSystemNumber != 0 {
		info.HasASN, info.ASN, info.ASOrg, info.ASNDB = true, int64(tr.AutonomousSystemNumber), tr.AutonomousSystemOrganization, KindEnterprise
	}
	if !info.HasISP && (tr.ISP != "" || tr.Organization != "") {
		info.HasISP, info.ISP, info.Organization, info.ISPDB = true, tr.ISP, tr.Organization, KindEnterprise
	}
	if !info.HasConnectionType && tr.ConnectionType != "" {
		info.HasConnectionType, info.ConnectionType, info.ConnectionTypeDB = true, tr.ConnectionType, KindEnterprise
	}
	info.UserType = tr.UserType
}

type subdivision struct{ name, code string }

func firstSub(n int, at func(int) (string, string)) subdivision {
	if n == 0 {
		return subdivision{}
	}
	name, code := at(0)
	return subdivision{name, code}
}

func setLocation(info *Info, k Kind, country, city string, sub subdivision, postal, tz string, lat, lon *float64) {
	if info.HasLocation {
		return
	}
	info.HasLocation, info.LocationDB = true, k
	info.Country, info.City, info.Region, info.RegionCode = country, city, sub.name, sub.code
	info.PostalCode, info.TimeZone = postal, tz
	if lat != nil && lon != nil {
		info.HasCoords, info.Latitude, info.Longitude = true, *lat, *lon
	}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// build prepares the MaxMind enrichments of info for address ip.
func (info *Info) build(ip string) {
	mk := func(name string, data map[string]string) schema.Enrichment {
		return schema.Enrichment{Name: name, Provider: ProviderMaxMind, Type: TypeIP, Value: ip, Data: data}
	}
	if info.HasLocation {
		data := nonEmpty("country", info.Country, "city", info.City, "region", info.Region, "region_code", info.RegionCode,
			"postal_code", info.PostalCode, "time_zone", info.TimeZone, "database", string(info.LocationDB))
		if info.HasCoords {
			data["latitude"], data["longitude"] = fmtFloat(info.Latitude), fmtFloat(info.Longitude)
		}
		info.geoipEnr = mk(NameGeoIP, data)
	}
	if info.HasASN {
		info.asnEnr = mk(NameASN, nonEmpty("asn", strconv.FormatInt(info.ASN, 10), "as_organization", info.ASOrg, "database", string(info.ASNDB)))
	}
	if info.HasISP {
		info.ispEnr = mk(NameISP, nonEmpty("isp", info.ISP, "organization", info.Organization, "database", string(info.ISPDB)))
	}
	if info.HasConnectionType {
		info.connEnr = mk(NameConnectionType, nonEmpty("connection_type", info.ConnectionType, "database", string(info.ConnectionTypeDB)))
	}
	if info.UserType != "" {
		info.userEnr = mk(NameUserType, map[string]string{"user_type": info.UserType, "database": string(KindEnterprise)})
	}
}

// Apply fills l's src* columns and appends one enrichment per source used,
// for the session address addr (nothing happens for the zero Addr).
// MaxMind data wins; OpenAI's details fill location and ASN only where no
// database covered addr, with provider "openai". A country present in both
// that differs is counted. The MaxMind enrichments' Data maps are shared
// between records: never modify them.
func (e *Enricher) Apply(l *schema.AuditLog, addr netip.Addr, details normalize.IPDetails) {
	if !addr.IsValid() {
		return
	}
	addr = addr.Unmap()
	info := e.lookupShared(addr)
	if cap(l.Enrichments) == 0 {
		l.Enrichments = make([]schema.Enrichment, 0, 5)
	}

	switch {
	case info.HasLocation:
		l.SrcASCountryCode, l.SrcCity = info.Country, info.City
		if info.HasCoords {
			l.SrcLatitude, l.SrcLongitude = info.Latitude, info.Longitude
		}
		l.Enrichments = append(l.Enrichments, info.geoipEnr)
		if details.Country != "" && info.Country != "" && !strings.EqualFold(details.Country, info.Country) {
			e.m.disagree.Inc()
		}
	case details.Country != "" || details.City != "" || details.HasCoords:
		l.SrcASCountryCode, l.SrcCity = details.Country, details.City
		data := nonEmpty("country", details.Country, "city", details.City, "region", details.Region, "region_code", details.RegionCode)
		if details.HasCoords {
			l.SrcLatitude, l.SrcLongitude = details.Latitude, details.Longitude
			data["latitude"], data["longitude"] = fmtFloat(details.Latitude), fmtFloat(details.Longitude)
		}
		l.Enrichments = append(l.Enrichments, schema.Enrichment{Name: NameGeoIP, Provider: ProviderOpenAI, Type: TypeIP, Value: addr.String(), Data: data})
		e.m.fallbackGeo.Inc()
	}

	switch {
	case info.HasASN:
		l.SrcASNumber, l.SrcASOrganization = info.ASN, info.ASOrg
		l.Enrichments = append(l.Enrichments, info.asnEnr)
	case details.ASN != 0:
		l.SrcASNumber = details.ASN
		l.Enrichments = append(l.Enrichments, schema.Enrichment{Name: NameASN, Provider: ProviderOpenAI, Type: TypeIP, Value: addr.String(),
			Data: map[string]string{"asn": strconv.FormatInt(details.ASN, 10)}})
		e.m.fallbackASN.Inc()
	}

	if info.HasISP {
		l.SrcISP = info.ISP
		l.Enrichments = append(l.Enrichments, info.ispEnr)
	}
	if info.HasConnectionType {
		l.SrcConnectionType = info.ConnectionType
		l.Enrichments = append(l.Enrichments, info.connEnr)
	}
	if info.UserType != "" {
		l.SrcUserType = info.UserType
		l.Enrichments = append(l.Enrichments, info.userEnr)
	}
}

func nonEmpty(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2+2)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}
