package openaisim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Simulator. The zero value is valid: an empty
// organization log, no live traffic, no faults.
type Config struct {
	// Seed makes the organization, the events and probabilistic faults
	// reproducible.
	Seed int64
	// Backlog is the number of historical events present from the start.
	Backlog int
	// BacklogSpan is how far back the backlog reaches (default 7 days).
	BacklogSpan time.Duration
	// RatePerMinute is the live event rate of Run/Start (0: none).
	RatePerMinute float64
	// AdminKeys are accepted bearer keys in addition to any key starting
	// with "sk-admin-".
	AdminKeys []string
	// UnknownTypeRate is the fraction of generated events that carry an
	// event type unknown to spec 2.3.0 (e.g. future.thing.happened).
	UnknownTypeRate float64
	// LateArrivalRate is the fraction of live events that become visible
	// with an effective_at in the past (OpenAI backfills, as seen in
	// production).
	LateArrivalRate float64
	// LateArrivalMaxAge is how old a late arrival can be (default 6h).
	LateArrivalMaxAge time.Duration
	// SameSecondBurst groups backlog events into bursts of this many events
	// sharing one effective_at second (0 or 1: independent seconds).
	SameSecondBurst int
	// Now is the clock for effective_at and visibility (default time.Now).
	Now func() time.Time
	// RequestLogLimit bounds Requests (default 100000; oldest dropped).
	RequestLogLimit int
	// Tick is the live generator's period (default 100ms).
	Tick time.Duration
	// DropRate is the fraction of live events that change the inventory
	// (keys, users, invites, projects, …) which are dropped: the inventory
	// changes but the audit log never serves the event (Dropped lists
	// them). Models the audit-log gaps the audit_gap detection finds.
	DropRate float64
}

func (c *Config) setDefaults() {
	if c.BacklogSpan == 0 {
		c.BacklogSpan = 7 * 24 * time.Hour
	}
	if c.LateArrivalMaxAge == 0 {
		c.LateArrivalMaxAge = 6 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RequestLogLimit == 0 {
		c.RequestLogLimit = 100000
	}
	if c.Tick == 0 {
		c.Tick = 100 * time.Millisecond
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Backlog < 0 {
		errs = append(errs, errors.New("backlog: must not be negative"))
	}
	if c.BacklogSpan < 0 || c.LateArrivalMaxAge < 0 || c.Tick < 0 {
		errs = append(errs, errors.New("backlog_span, late_arrival_max_age, tick: must not be negative"))
	}
	if c.RatePerMinute < 0 {
		errs = append(errs, errors.New("rate_per_minute: must not be negative"))
	}
	for name, v := range map[string]float64{"unknown_type_rate": c.UnknownTypeRate, "late_arrival_rate": c.LateArrivalRate, "drop_rate": c.DropRate} {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%s: must be within [0, 1], got %v", name, v))
		}
	}
	if c.SameSecondBurst < 0 || c.RequestLogLimit < 0 {
		errs = append(errs, errors.New("same_second_burst, request_log_limit: must not be negative"))
	}
	return errors.Join(errs...)
}

// Simulator is an in-memory OpenAI audit-log API. All methods are safe for
// concurrent use.
type Simulator struct {
	cfg Config
	log *slog.Logger

	genMu sync.Mutex
	gen   *generator

	mu     sync.RWMutex
	store  *store
	served map[string]int
	// dropped are the events applied to the inventory but never served.
	dropped []Event

	faults faultQueue

	reqMu    sync.Mutex
	reqCount int // authenticated audit-log requests, numbers faults match on
	requests []RequestLog
	reqSeq   int

	url atomic.Pointer[string]

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // live generators and in-flight requests
}

// New builds a Simulator with cfg's backlog already visible. logger may be
// nil.
func New(cfg Config, logger *slog.Logger) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating config: %w", err)
	}
	cfg.setDefaults()
	cfg.AdminKeys = append([]string(nil), cfg.AdminKeys...)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{
		cfg:    cfg,
		log:    logger,
		gen:    newGenerator(cfg),
		store:  newStore(),
		served: make(map[string]int),
		faults: faultQueue{r: rand.New(rand.NewPCG(uint64(cfg.Seed), 0xfa017))},
		closed: make(chan struct{}),
	}
	now := cfg.Now()
	backlog := s.gen.backlog(cfg.Backlog, now, cfg.BacklogSpan)
	evs := make([]*Event, len(backlog))
	for i, raw := range backlog {
		ev, err := parseEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("building backlog: %w", err)
		}
		ev.VisibleAt = now
		evs[i] = &ev
	}
	if err := s.store.insertAll(evs); err != nil {
		return nil, fmt.Errorf("building backlog: %w", err)
	}
	return s, nil
}

func (s *Simulator) insert(raw []byte, visible time.Time, late bool) (Event, error) {
	ev, err := parseEvent(raw)
	if err != nil {
		return Event{}, err
	}
	ev.VisibleAt, ev.Late = visible, late
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.insert(&ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// AddRaw makes raw audit-log items visible now, served byte for byte. Each
// must be a JSON object with a string "id" and "type" and an integer
// "effective_at"; ids must be new. Items before the first invalid one are
// added; the error names the invalid one.
// Each item is applied to the inventory first (an api_key.created adds the
// key, and so on).
func (s *Simulator) AddRaw(raws ...[]byte) ([]Event, error) { return s.addRaw(true, raws...) }

// addRaw adds items; apply applies them to the inventory (the generator
// has already applied the items it made).
func (s *Simulator) addRaw(apply bool, raws ...[]byte) ([]Event, error) {
	now := s.cfg.Now()
	out := make([]Event, 0, len(raws))
	for i, raw := range raws {
		if _, err := parseEvent(raw); err == nil && apply {
			s.gen.inv.apply(raw)
		}
		ev, err := s.insert(raw, now, false)
		if err != nil {
			return out, fmt.Errorf("adding item %d: %w", i, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// AddEvents is AddRaw for events built by the caller; only Raw is used, the
// other fields are derived from it.
func (s *Simulator) AddEvents(evs ...Event) ([]Event, error) {
	raws := make([][]byte, len(evs))
	for i, ev := range evs {
		raws[i] = ev.Raw
	}
	return s.AddRaw(raws...)
}

// Generate makes n new generated events visible now and returns them. They
// follow the Config's unknown-type and late-arrival rates.
func (s *Simulator) Generate(n int) []Event {
	return s.GenerateSpec(Spec{N: n})
}

// Spec describes events for GenerateSpec.
type Spec struct {
	// N is the number of events.
	N int
	// Type forces the event type (any string, known or not); "" draws
	// types like Generate.
	Type string
	// EffectiveAt forces the effective_at of every event (e.g. in the past
	// for a late arrival); zero means now, or a late-arrival draw.
	EffectiveAt time.Time
}

// GenerateSpec makes generated events as spec describes visible now and
// returns them in creation order.
func (s *Simulator) GenerateSpec(spec Spec) []Event {
	now := s.cfg.Now()
	out := make([]Event, 0, max(spec.N, 0))
	for range spec.N {
		s.genMu.Lock()
		var raw []byte
		late := false
		if spec.EffectiveAt.IsZero() {
			raw, late = s.gen.live(spec.Type, now)
		} else {
			typ := spec.Type
			if typ == "" {
				typ = s.gen.drawType()
			}
			raw = s.gen.item(typ, spec.EffectiveAt.Unix())
			late = spec.EffectiveAt.Unix() < now.Unix()
		}
		drop := s.cfg.DropRate > 0 && s.gen.r.Float64() < s.cfg.DropRate && changesInventory(eventType(raw))
		s.genMu.Unlock()
		if drop {
			s.recordDropped(raw, now)
			continue
		}
		ev, err := s.insert(raw, now, late)
		if err != nil {
			// 24 random alphanumerics collide with probability ~1e-43.
			s.log.Warn("dropping generated event", slog.Any("error", err))
			continue
		}
		out = append(out, ev)
	}
	if len(out) > 0 {
		s.log.Debug("generated events", slog.Int("n", len(out)))
	}
	return out
}

// DropAudit makes generated events as spec describes (Type defaults to
// api_key.created) and applies them to the inventory without ever serving
// them: the object changes, the audit log does not say so. It returns the
// dropped events (Dropped lists them all).
func (s *Simulator) DropAudit(spec Spec) []Event {
	if spec.Type == "" {
		spec.Type = "api_key.created"
	}
	now := s.cfg.Now()
	var out []Event
	for range spec.N {
		eff := now
		if !spec.EffectiveAt.IsZero() {
			eff = spec.EffectiveAt
		}
		s.genMu.Lock()
		raw := s.gen.item(spec.Type, eff.Unix())
		s.genMu.Unlock()
		if ev, ok := s.recordDropped(raw, now); ok {
			out = append(out, ev)
		}
	}
	return out
}

func (s *Simulator) recordDropped(raw []byte, now time.Time) (Event, bool) {
	ev, err := parseEvent(raw)
	if err != nil {
		return Event{}, false
	}
	ev.VisibleAt = now
	s.mu.Lock()
	s.dropped = append(s.dropped, ev)
	s.mu.Unlock()
	s.log.Debug("dropped an audit event on purpose", slog.String("id", ev.ID), slog.String("type", ev.Type))
	return ev, true
}

// Dropped returns the events dropped on purpose (DropAudit, DropRate),
// oldest first: they changed the inventory but are not in GroundTruth.
func (s *Simulator) Dropped() []Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.dropped)
}

// eventType reads the "type" of an item ("" if it has none).
func eventType(raw []byte) string {
	var it struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(raw, &it)
	return it.Type
}

// GroundTruth returns every event the simulator has made visible, newest
// first (listing order, all tenant scopes).
func (s *Simulator) GroundTruth() []Event {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Event, len(s.store.events))
	for i, e := range s.store.events {
		out[i] = *e
	}
	return out
}

// Served returns how many times each event id was served in a 200 page.
func (s *Simulator) Served() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int, len(s.served))
	for k, v := range s.served {
		out[k] = v
	}
	return out
}

// ScheduleFault queues f for upcoming audit-log requests.
func (s *Simulator) ScheduleFault(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("scheduling fault: %w", err)
	}
	s.faults.add(f)
	return nil
}

// Faults returns the faults still scheduled, with their remaining counts.
func (s *Simulator) Faults() []Fault { return s.faults.list() }

// ClearFaults removes every scheduled fault.
func (s *Simulator) ClearFaults() { s.faults.clear() }

// URL is the base URL (scheme://host:port, no path) of the listener Serve
// is using, or "" before Serve. Pass it as the OpenAI base URL with "/v1".
func (s *Simulator) URL() string {
	if u := s.url.Load(); u != nil {
		return *u
	}
	return ""
}

// Run generates live events at Config.RatePerMinute until ctx is done, then
// returns nil. With a zero rate it just waits.
func (s *Simulator) Run(ctx context.Context) error {
	if s.cfg.RatePerMinute <= 0 {
		select {
		case <-ctx.Done():
		case <-s.closed:
		}
		return nil
	}
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	last := time.Now()
	owed := 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return nil
		case now := <-t.C:
			owed += s.cfg.RatePerMinute * now.Sub(last).Minutes()
			last = now
			if n := int(owed); n > 0 {
				owed -= float64(n)
				s.Generate(n)
			}
		}
	}
}

// Start runs Run in the background until ctx is done or Close is called.
func (s *Simulator) Start(ctx context.Context) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.Run(ctx)
	}()
}

// Listen opens a TCP listener on addr (e.g. "127.0.0.1:0") and makes URL
// report it.
func (s *Simulator) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	u := "http://" + ln.Addr().String()
	s.url.Store(&u)
	return ln, nil
}

// Serve answers HTTP on ln until ctx is done, then shuts down (releasing
// requests held by timeout faults) and returns. It returns nil on a clean
// stop.
func (s *Simulator) Serve(ctx context.Context, ln net.Listener) error {
	u := "http://" + ln.Addr().String()
	s.url.Store(&u)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.releaseHeld()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// releaseHeld ends requests held by timeout faults and stops the live
// generator.
func (s *Simulator) releaseHeld() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// Close stops live generation, releases held requests and waits for the
// simulator's goroutines and in-flight handlers. It is idempotent; the
// simulator's data stays readable.
func (s *Simulator) Close() {
	s.releaseHeld()
	s.wg.Wait()
}

// redactKey keeps a key's kind and last four characters.
func redactKey(key string) string {
	if key == "" {
		return ""
	}
	prefix := ""
	for _, p := range []string{"sk-", "sk-admin-", "sk-proj-", "sk-svcacct-"} {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	if len(key) <= len(prefix)+4 {
		return prefix + "…"
	}
	return prefix + "…" + key[len(key)-4:]
}
