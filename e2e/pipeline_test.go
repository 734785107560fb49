package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

const (
	e2eSource    = "e2e-org"
	e2eWorkspace = "e2e-workspace"
	e2eTTLDays   = 3650
)

func sourceEnv() []string {
	return []string{
		"AUDITPIPE_POLLER_SOURCES__0__SOURCE_ID=" + e2eSource,
		"AUDITPIPE_POLLER_SOURCES__0__WORKSPACE_ID=" + e2eWorkspace,
		fmt.Sprintf("AUDITPIPE_POLLER_SOURCES__0__SOURCE_TTL_DAYS=%d", e2eTTLDays),
		"AUDITPIPE_POLLER_SOURCES__0__BACKFILL=24h",
	}
}

// allTypesBacklog adds a backlog with every one of the 147 event types (and
// an unknown future type) at least twice, from IPv4 and IPv6 sessions. It
// runs before the services start (pipelineOptions.seed).
func allTypesBacklog(sim *openaisim.Simulator) {
	base := time.Now().Add(-2 * time.Hour)
	for i, et := range openaisim.EventTypes() {
		sim.GenerateSpec(openaisim.Spec{N: 2, Type: et.Name, EffectiveAt: base.Add(time.Duration(i) * time.Second)})
	}
	sim.GenerateSpec(openaisim.Spec{N: 3, Type: "future.thing.happened", EffectiveAt: base.Add(-time.Minute)})
}

// TestPipelineOnKfake runs the whole pipeline as processes on kfake, srfake
// and the embedded ClickHouse, and checks every row against the simulator's
// ground truth and the GeoIP databases; then latency, kill -9 of each
// service, a replay of the raw topic and a third-party Avro reader.
func TestPipelineOnKfake(t *testing.T) {
	p := startPipeline(t, pipelineOptions{
		sim:      openaisim.Config{Seed: 42},
		seed:     allTypesBacklog,
		extraEnv: map[string][]string{"poller": sourceEnv()},
	})
	runScenario(t, p, nil)
}

// scenarioHooks lets a Kafka flavour add steps (a broker restart).
type scenarioHooks struct {
	midStream func(t *testing.T)
}

func runScenario(t *testing.T, p *pipeline, hooks *scenarioHooks) {
	truth := p.sim.GroundTruth()
	require.GreaterOrEqual(t, len(openaisim.EventTypes()), 145)
	n := len(truth)
	t.Logf("backlog: %d events over %d types", n, len(openaisim.EventTypes())+1)
	p.waitCount("SELECT count() FROM openai_audit_logs", n, 3*time.Minute)
	checkRows(t, p, truth)

	t.Run("latency", func(t *testing.T) { measureLatency(t, p) })

	t.Run("kill -9 each service mid-stream", func(t *testing.T) {
		for _, svc := range []string{"poller", "enricher", "loader"} {
			p.sim.Generate(40)
			time.Sleep(300 * time.Millisecond)
			proc := p.stack.Procs[svc]
			proc.Kill()
			p.sim.Generate(40)
			require.NoError(t, proc.Restart(), svc)
		}
		if hooks != nil && hooks.midStream != nil {
			p.sim.Generate(40)
			hooks.midStream(t)
			p.sim.Generate(40)
		}
		assertExactlyOnce(t, p)
	})

	t.Run("third-party Avro reader decodes every record", func(t *testing.T) {
		thirdPartyReader(t, p)
	})

	t.Run("replay of the raw topic leaves no duplicates", func(t *testing.T) {
		proc := p.stack.Procs["enricher"]
		require.NoError(t, proc.Stop(30*time.Second))
		before := endOffsets(t, p, "openai-audit-enriched")
		replay(t, p)
		require.NoError(t, proc.Restart())
		// Every raw event is enriched again and loaded again: wait until the
		// enriched topic grew by at least that many records and the loader
		// has committed all of it.
		waitLoaderCaughtUp(t, p, before+int64(len(p.sim.GroundTruth())))
		assertExactlyOnce(t, p)
	})
}

// assertExactlyOnce waits for every event the simulator has served to be in
// ClickHouse, then checks that there is exactly one row per event.
func assertExactlyOnce(t *testing.T, p *pipeline) {
	t.Helper()
	truth := p.sim.GroundTruth()
	want := map[string]bool{}
	for _, e := range truth {
		want[e.ID] = true
	}
	p.waitCount("SELECT uniqExact(eventID) FROM openai_audit_logs", len(want), 3*time.Minute)
	p.mustQuery("OPTIMIZE TABLE openai_audit_logs FINAL")
	got := p.mustQuery("SELECT count(), uniqExact(eventID), uniqExact(id) FROM openai_audit_logs FORMAT TSV")
	assert.Equal(t, fmt.Sprintf("%d\t%d\t%d", len(want), len(want), len(want)), got, "count() = uniqExact(eventID) = events served")
	ids := strings.Fields(p.mustQuery("SELECT eventID FROM openai_audit_logs ORDER BY eventID FORMAT TSV"))
	var wantIDs []string
	for id := range want {
		wantIDs = append(wantIDs, id)
	}
	sort.Strings(wantIDs)
	assert.Equal(t, wantIDs, ids, "exactly the simulated events")
}

// checkRows compares every column of every row with what the raw event, the
// source configuration and the GeoIP databases say it must hold.
func checkRows(t *testing.T, p *pipeline, truth []openaisim.Event) {
	t.Helper()
	rows := p.rows("SELECT * FROM openai_audit_logs ORDER BY eventID")
	byID := map[string]map[string]any{}
	for _, r := range rows {
		byID[r["eventID"].(string)] = r
	}
	require.Len(t, byID, len(truth))
	families := map[string]bool{}
	v4, v6 := 0, 0
	for _, e := range truth {
		r, ok := byID[e.ID]
		if !assert.True(t, ok, "event %s (%s) missing", e.ID, e.Type) {
			continue
		}
		exp := expected(t, e)
		for col, want := range exp {
			assert.Equal(t, want, r[col], "event %s (%s) column %s", e.ID, e.Type, col)
		}
		families[r["eventType"].(string)] = true
		if ip, err := netip.ParseAddr(fmt.Sprint(r["srcIP"])); err == nil {
			if ip.Is4() {
				v4++
			} else {
				v6++
			}
		}
		assert.Len(t, r, 46, "46 columns")
	}
	assert.Positive(t, v4, "IPv4 sessions")
	assert.Positive(t, v6, "IPv6 sessions")
	t.Logf("checked %d rows x 46 columns: %d event families, %d IPv4 and %d IPv6 sources", len(truth), len(families), v4, v6)
}

// expected derives the columns that follow directly from the raw event.
func expected(t *testing.T, e openaisim.Event) map[string]any {
	var ev struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		EffectiveAt int64  `json:"effective_at"`
		Project     *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"project"`
		Actor *struct {
			Type    string `json:"type"`
			Session *struct {
				User *struct {
					ID    string `json:"id"`
					Email string `json:"email"`
				} `json:"user"`
				IPAddress string `json:"ip_address"`
			} `json:"session"`
			APIKey *struct {
				ID   string `json:"id"`
				Type string `json:"type"`
				User *struct {
					ID    string `json:"id"`
					Email string `json:"email"`
				} `json:"user"`
				ServiceAccount *struct {
					ID string `json:"id"`
				} `json:"service_account"`
			} `json:"api_key"`
		} `json:"actor"`
	}
	require.NoError(t, json.Unmarshal(e.Raw, &ev))
	exp := map[string]any{
		"eventID":     ev.ID,
		"eventName":   ev.Type,
		"eventTime":   time.Unix(ev.EffectiveAt, 0).UTC().Format(time.DateTime),
		"rawLog":      string(e.Raw),
		"serviceName": "openai",
		"sourceType":  "openai",
		"sourceID":    e2eSource,
		"workspaceID": e2eWorkspace,
		"sourceTTL":   float64(e2eTTLDays),
		"eventType":   family(ev.Type),
		"readOnly":    readOnly(ev.Type),
		"dstIP":       "", "dstCity": "", "dstISP": "", "dstASOrganization": "", "dstASCountryCode": "",
		"dstASNumber": float64(0), "dstLatitude": float64(0), "dstLongitude": float64(0),
		"dstConnectionType": "", "dstUserType": "",
	}
	proj := [2]string{}
	if ev.Project != nil {
		proj = [2]string{ev.Project.ID, ev.Project.Name}
	}
	exp["projectID"], exp["projectName"] = proj[0], proj[1]
	actorType, ip, userID, email, keyID, keyType, saID := "", "", "", "", "", "", ""
	if a := ev.Actor; a != nil {
		actorType = a.Type
		if s := a.Session; s != nil {
			ip = s.IPAddress
			if s.User != nil {
				userID, email = s.User.ID, s.User.Email
			}
		}
		if k := a.APIKey; k != nil {
			keyID, keyType = k.ID, k.Type
			if k.User != nil {
				userID, email = k.User.ID, k.User.Email
			}
			if k.ServiceAccount != nil {
				saID = k.ServiceAccount.ID
			}
		}
	}
	exp["actorType"], exp["actorIP"], exp["srcIP"] = actorType, ip, ip
	exp["actorUserID"], exp["actorUserEmail"] = userID, email
	exp["apiKeyID"], exp["apiKeyType"], exp["serviceAccountID"] = keyID, keyType, saID
	geo := map[string]any{
		"srcASCountryCode": "", "srcCity": "", "srcISP": "", "srcASOrganization": "",
		"srcASNumber": float64(0), "srcLatitude": float64(0), "srcLongitude": float64(0),
		"srcConnectionType": "", "srcUserType": "",
	}
	if addr, err := netip.ParseAddr(ip); err == nil {
		if n, ok := openaisim.NetworkFor(addr); ok {
			geo = map[string]any{
				"srcASCountryCode": n.Country, "srcCity": n.City, "srcISP": n.ISP, "srcASOrganization": n.ASOrg,
				"srcASNumber": float64(n.ASN), "srcLatitude": n.Lat, "srcLongitude": n.Lon,
				"srcConnectionType": n.ConnectionType, "srcUserType": n.UserType,
			}
		}
	}
	for k, v := range geo {
		exp[k] = v
	}
	return exp
}

// readOnly is the documented list (docs/enricher.md): events that change
// nothing.
func readOnly(typ string) bool {
	switch {
	case strings.HasPrefix(typ, "login."), strings.HasPrefix(typ, "logout."):
		return true
	}
	action := typ[strings.LastIndexByte(typ, '.')+1:]
	return action == "looked_up" || action == "viewed" || action == "listed" || action == "read" ||
		typ == "tenant.principal_authentication_policy.resolved"
}

// family is the documented eventType rule: the type without its final
// action segment, with the old checkpoint_permission spelling normalized.
func family(typ string) string {
	typ = strings.Replace(typ, "checkpoint_permission.", "checkpoint.permission.", 1)
	if i := strings.LastIndexByte(typ, '.'); i > 0 {
		return typ[:i]
	}
	return typ
}

// measureLatency creates events in the simulator, one a second, while the
// pipeline runs, and reports how long each took to become queryable in
// ClickHouse. ClickHouse is queried concurrently with the creation, from
// before the first event, so an event's latency does not include the rest
// of the creation loop. With the minimum 10 s poll interval the poll phase
// dominates.
func measureLatency(t testing.TB, p *pipeline) (p50, p95 time.Duration) {
	const n = 25
	var (
		mu      sync.Mutex
		created = map[string]time.Time{}
		seen    = map[string]time.Duration{}
	)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			mu.Lock()
			var ids []string
			for id := range created {
				if _, ok := seen[id]; !ok {
					ids = append(ids, "'"+id+"'")
				}
			}
			mu.Unlock()
			if len(ids) > 0 {
				out, err := p.query(fmt.Sprintf("SELECT eventID FROM openai_audit_logs WHERE eventID IN (%s) FORMAT TSV", strings.Join(ids, ",")))
				now := time.Now()
				mu.Lock()
				for _, id := range strings.Fields(out) {
					if _, ok := seen[id]; !ok && err == nil {
						seen[id] = now.Sub(created[id])
					}
				}
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	for i := range n {
		if i > 0 {
			time.Sleep(time.Second)
		}
		mu.Lock()
		created[p.sim.Generate(1)[0].ID] = time.Now()
		mu.Unlock()
	}
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(done)
	<-stopped
	require.Len(t, seen, n, "every event became queryable within two minutes")
	lat := make([]time.Duration, 0, n)
	for _, d := range seen {
		lat = append(lat, d)
	}
	slices.Sort(lat)
	p50, p95 = lat[len(lat)/2], lat[len(lat)*95/100]
	t.Logf("event creation → queryable in ClickHouse: p50 %s, p95 %s, max %s (%d events, poll interval 10s)", p50.Round(time.Millisecond), p95.Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), n)
	return p50, p95
}
