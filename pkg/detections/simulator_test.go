package detections_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// TestSimulatorAttacksTripTheirRules runs every attack scenario of the
// simulator through the rule it is named after (with default knobs): the
// rule's findings cover exactly the scenario's events. The rows are made
// from the raw items with the columns the rules read, as the enricher
// fills them (e2e/TestDetectionEndToEnd runs the real pipeline).
func TestSimulatorAttacksTripTheirRules(t *testing.T) {
	e := sharedEnv(t)
	// Findings per rule beyond the scenario's own rule, and how many
	// findings the own rule makes (default 1).
	findings := map[string]int{openaisim.AttackIPAllowlistChanged: 4, openaisim.AttackCertificateChanged: 2, openaisim.AttackAPIKeyElevatedScopes: 2}
	others := map[string]map[string]int{openaisim.AttackImpossibleTravel: {"login_new_country": 1}}
	// A scenario spans the 90 s before its end. Rules key a finding by the
	// fixed interval (10 min to a day) in which their threshold was
	// crossed, so a burst that straddles an interval boundary rightly
	// makes one finding per interval: end the scenarios 5 minutes past an
	// hour, whatever the clock says.
	end := e.base.Add(5 * time.Minute)
	for _, kind := range openaisim.AttackKinds() {
		t.Run(kind, func(t *testing.T) {
			sim, err := openaisim.New(openaisim.Config{Seed: 11}, nil)
			require.NoError(t, err)
			defer sim.Close()
			evs, err := sim.Attack(kind, end)
			require.NoError(t, err)
			ws := e.ws("sim-" + kind)
			e.insertRaw(ws, evs)
			var want []string
			for _, ev := range evs {
				want = append(want, ev.ID)
			}
			slices.Sort(want)

			e.run(kind)
			got := e.findings(kind, ws)
			require.Len(t, got, max(findings[kind], 1), "%+v", got)
			var union []string
			for _, f := range got {
				union = append(union, f.EventIDs...)
			}
			slices.Sort(union)
			assert.Equal(t, want, slices.Compact(union), "the findings cover exactly the scenario's events")
			for rule, n := range others[kind] {
				e.run(rule)
				assert.Len(t, e.findings(rule, ws), n, rule)
			}
		})
	}
}

// insertRaw writes simulator items as rows of workspace ws, received now.
func (e *env) insertRaw(ws string, evs []openaisim.Event) {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO `%s`.openai_audit_logs FORMAT JSONEachRow\n", e.opts.Database)
	for _, ev := range evs {
		line, err := json.Marshal(rawRow(e.t, ws, ev))
		require.NoError(e.t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	require.NoError(e.t, chservertest.Exec(e.url, b.String()))
}

func rawRow(t testing.TB, ws string, ev openaisim.Event) map[string]any {
	var item openaisim.AuditLog
	require.NoError(t, json.Unmarshal(ev.Raw, &item))
	r := map[string]any{
		"workspaceID": ws, "sourceID": "src", "receivedAt": time.Now().Unix(), "id": ev.ID,
		"eventTime": item.EffectiveAt, "eventName": item.Type, "eventID": item.ID, "rawLog": string(ev.Raw),
	}
	if item.Project != nil {
		r["projectID"] = item.Project.ID
	}
	if a := item.Actor; a != nil {
		r["actorType"] = a.Type
		if s := a.Session; s != nil {
			r["actorUserID"], r["actorUserEmail"], r["srcIP"], r["actorIP"] = s.User.ID, s.User.Email, s.IPAddress, s.IPAddress
			if d := s.IPAddressDetails; d != nil {
				lat, err := strconv.ParseFloat(d.Latitude, 64)
				require.NoError(t, err)
				lon, err := strconv.ParseFloat(d.Longitude, 64)
				require.NoError(t, err)
				r["srcASCountryCode"], r["srcCity"], r["srcLatitude"], r["srcLongitude"] = d.Country, d.City, lat, lon
			}
		}
		if k := a.APIKey; k != nil {
			r["apiKeyID"], r["apiKeyType"] = k.ID, k.Type
			if k.User != nil {
				r["actorUserID"], r["actorUserEmail"] = k.User.ID, k.User.Email
			}
			if k.ServiceAccount != nil {
				r["serviceAccountID"] = k.ServiceAccount.ID
			}
		}
	}
	return r
}
