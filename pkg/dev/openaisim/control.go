package openaisim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxControlBody bounds request bodies of the control API.
const maxControlBody = 64 << 20

// registerControl mounts the control API under ControlPrefix:
//
//	POST   /_sim/events      add items (a JSON array, or objects one after another)
//	POST   /_sim/generate    ?n=&type=&effective_at= generate events now
//	GET    /_sim/attacks     the attack scenarios
//	POST   /_sim/attacks     ?kind=&effective_at= generate an attack scenario now
//	GET    /_sim/faults      scheduled faults
//	POST   /_sim/faults      schedule a fault (object) or faults (array)
//	DELETE /_sim/faults      clear faults
//	GET    /_sim/requests    request log
//	GET    /_sim/truth       ground truth (every visible event, newest first)
//	GET    /_sim/served      times each id was served
//	GET    /_sim/networks    the address blocks sessions come from
//	GET    /_sim/event_types the 147 known event types
//	POST   /_sim/drop        ?n=&type=&effective_at= change the inventory without an audit event
//	GET    /_sim/dropped     the events dropped on purpose
//	GET    /_sim/healthz     200 "ok"
//
// The control API needs no authentication.
func (s *Simulator) registerControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/events", s.controlAddEvents)
	mux.HandleFunc("POST /_sim/generate", s.controlGenerate)
	mux.HandleFunc("GET /_sim/attacks", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, AttackKinds()) })
	mux.HandleFunc("POST /_sim/attacks", s.controlAttack)
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, s.Faults()) })
	mux.HandleFunc("POST /_sim/faults", s.controlAddFaults)
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, s.Requests()) })
	mux.HandleFunc("GET /_sim/truth", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, s.GroundTruth()) })
	mux.HandleFunc("GET /_sim/served", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, s.Served()) })
	mux.HandleFunc("GET /_sim/networks", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, networksJSON()) })
	mux.HandleFunc("GET /_sim/event_types", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, eventTypesJSON()) })
	mux.HandleFunc("POST /_sim/drop", s.controlDrop)
	mux.HandleFunc("GET /_sim/dropped", func(w http.ResponseWriter, _ *http.Request) { writeJSONResponse(w, http.StatusOK, s.Dropped()) })
	mux.HandleFunc("GET /_sim/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc(ControlPrefix, func(w http.ResponseWriter, r *http.Request) {
		controlError(w, http.StatusNotFound, fmt.Errorf("no control endpoint %s %s", r.Method, r.URL.Path))
	})
}

func (s *Simulator) controlAddEvents(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		controlError(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		return
	}
	raws, err := splitItems(body)
	if err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	evs, err := s.AddRaw(raws...)
	if err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSONResponse(w, http.StatusCreated, evs)
}

// splitItems returns the items of a JSON array, or of JSON values that
// follow one another (one object, or newline-delimited objects), compacted.
func splitItems(body []byte) ([][]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, fmt.Errorf("decoding items: %w", err)
		}
		out := make([][]byte, len(arr))
		for i, a := range arr {
			out[i] = a
		}
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var out [][]byte
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding items: %w", err)
		}
		out = append(out, raw)
	}
}

func (s *Simulator) controlGenerate(w http.ResponseWriter, r *http.Request) {
	spec, ok := specFromQuery(w, r)
	if ok {
		writeJSONResponse(w, http.StatusCreated, s.GenerateSpec(spec))
	}
}

// controlDrop drops events on purpose (DropAudit): n events of type (default
// api_key.created) change the inventory and are never served.
func (s *Simulator) controlDrop(w http.ResponseWriter, r *http.Request) {
	spec, ok := specFromQuery(w, r)
	if !ok {
		return
	}
	if spec.Type != "" && !changesInventory(spec.Type) {
		controlError(w, http.StatusBadRequest, fmt.Errorf("type %q does not change the inventory: drop an api_key, user, invite, project, service_account, certificate, group, role or rate_limit event", spec.Type))
		return
	}
	writeJSONResponse(w, http.StatusCreated, s.DropAudit(spec))
}

// specFromQuery reads n, type and effective_at; on a bad value it answers
// 400 and returns false.
func specFromQuery(w http.ResponseWriter, r *http.Request) (Spec, bool) {
	q := r.URL.Query()
	spec := Spec{N: 1, Type: q.Get("type")}
	if v := q.Get("n"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			controlError(w, http.StatusBadRequest, fmt.Errorf("n must be an integer in [0, 1000000], got %q", v))
			return spec, false
		}
		spec.N = n
	}
	if v := q.Get("effective_at"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			controlError(w, http.StatusBadRequest, fmt.Errorf("effective_at must be Unix seconds, got %q", v))
			return spec, false
		}
		spec.EffectiveAt = time.Unix(sec, 0)
	}
	return spec, true
}

// controlAttack generates the scenario named by kind (or "all"), ending at
// effective_at (Unix seconds; default now).
func (s *Simulator) controlAttack(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var end time.Time
	if v := q.Get("effective_at"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			controlError(w, http.StatusBadRequest, fmt.Errorf("effective_at must be Unix seconds, got %q", v))
			return
		}
		end = time.Unix(sec, 0)
	}
	evs, err := s.Attack(q.Get("kind"), end)
	if err != nil {
		controlError(w, http.StatusBadRequest, err)
		return
	}
	writeJSONResponse(w, http.StatusCreated, evs)
}

func (s *Simulator) controlAddFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		controlError(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		return
	}
	var faults []Fault
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		err = json.Unmarshal(body, &faults)
	} else {
		var f Fault
		err = json.Unmarshal(body, &f)
		faults = []Fault{f}
	}
	if err != nil {
		controlError(w, http.StatusBadRequest, fmt.Errorf("decoding faults: %w", err))
		return
	}
	for i := range faults {
		if err := faults[i].validate(); err != nil {
			controlError(w, http.StatusBadRequest, fmt.Errorf("fault %d: %w", i, err))
			return
		}
	}
	for _, f := range faults {
		s.faults.add(f)
	}
	writeJSONResponse(w, http.StatusCreated, s.Faults())
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		controlError(w, http.StatusInternalServerError, fmt.Errorf("encoding response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func controlError(w http.ResponseWriter, status int, err error) {
	writeError(w, &apiError{status: status, message: err.Error(), typ: "simulator_control_error"})
}

// faultWire is Fault's JSON form: durations are Go duration strings ("2s")
// on output and either strings or numbers of seconds on input.
type faultWire struct {
	Kind       FaultKind    `json:"kind"`
	Status     int          `json:"status,omitempty"`
	RetryAfter wireDuration `json:"retry_after,omitzero"`
	Delay      wireDuration `json:"delay,omitzero"`
	Documents  int          `json:"documents,omitempty"`
	Abort      bool         `json:"abort,omitempty"`
	Count      int          `json:"count,omitempty"`
	Match      Match        `json:"match,omitzero"`
}

// MarshalJSON encodes durations as strings such as "1.5s".
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultWire{f.Kind, f.Status, wireDuration(f.RetryAfter), wireDuration(f.Delay), f.Documents, f.Abort, f.Count, f.Match})
}

// UnmarshalJSON accepts durations as strings ("250ms") or seconds (2.5).
func (f *Fault) UnmarshalJSON(b []byte) error {
	var w faultWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*f = Fault{w.Kind, w.Status, time.Duration(w.RetryAfter), time.Duration(w.Delay), w.Documents, w.Abort, w.Count, w.Match}
	return nil
}

type wireDuration time.Duration

func (d wireDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *wireDuration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("parsing duration: %w", err)
		}
		*d = wireDuration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return errors.New("duration must be a string such as \"2s\" or a number of seconds")
	}
	*d = wireDuration(secs * float64(time.Second))
	return nil
}

type networkWire struct {
	CIDR           string  `json:"cidr"`
	Country        string  `json:"country"`
	CountryName    string  `json:"country_name"`
	Continent      string  `json:"continent"`
	City           string  `json:"city"`
	Region         string  `json:"region"`
	RegionCode     string  `json:"region_code"`
	PostalCode     string  `json:"postal_code"`
	TimeZone       string  `json:"time_zone"`
	ASN            uint32  `json:"asn"`
	ASOrg          string  `json:"as_org"`
	ISP            string  `json:"isp"`
	ConnectionType string  `json:"connection_type"`
	UserType       string  `json:"user_type"`
	Lat            float64 `json:"latitude"`
	Lon            float64 `json:"longitude"`
}

func networksJSON() []networkWire {
	out := make([]networkWire, len(networks))
	for i, n := range networks {
		out[i] = networkWire{n.CIDR.String(), n.Country, n.CountryName, n.Continent, n.City, n.Region, n.RegionCode, n.PostalCode, n.TimeZone, n.ASN, n.ASOrg, n.ISP, n.ConnectionType, n.UserType, n.Lat, n.Lon}
	}
	return out
}

type eventTypeWire struct {
	Name         string `json:"name"`
	Group        string `json:"group"`
	TenantScoped bool   `json:"tenant_scoped"`
}

func eventTypesJSON() []eventTypeWire {
	out := make([]eventTypeWire, len(eventTypes))
	for i, et := range eventTypes {
		out[i] = eventTypeWire(et)
	}
	return out
}
