package openaisim_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
	"github.com/auditpipe/auditpipe/pkg/dev/openaisim/openaisimtest"
)

// attackEvent is the part of an item the scenarios' checks read.
type attackEvent struct {
	Type        string `json:"type"`
	EffectiveAt int64  `json:"effective_at"`
	Actor       *openaisim.Actor
	Payload     map[string]any
}

func decodeAttack(t *testing.T, evs []openaisim.Event) []attackEvent {
	t.Helper()
	out := make([]attackEvent, len(evs))
	for i, e := range evs {
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(e.Raw, &fields))
		require.NoError(t, json.Unmarshal(e.Raw, &out[i]))
		if p, ok := fields[e.Type]; ok {
			require.NoError(t, json.Unmarshal(p, &out[i].Payload))
		}
	}
	return out
}

func (e attackEvent) email() string {
	switch {
	case e.Actor == nil:
		return ""
	case e.Actor.Session != nil:
		return e.Actor.Session.User.Email
	case e.Actor.APIKey != nil && e.Actor.APIKey.User != nil:
		return e.Actor.APIKey.User.Email
	}
	return ""
}

func (e attackEvent) ip() string {
	if e.Actor == nil || e.Actor.Session == nil {
		return ""
	}
	return e.Actor.Session.IPAddress
}

func types(evs []attackEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func distinct(evs []attackEvent, f func(attackEvent) string) int {
	m := map[string]bool{}
	for _, e := range evs {
		m[f(e)] = true
	}
	return len(m)
}

// TestAttacks checks that each scenario carries what its detection rule
// needs (schemas/detections/rules, default thresholds).
func TestAttacks(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)
	checks := map[string]func(t *testing.T, evs []attackEvent){
		openaisim.AttackCredentialStuffing: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, strings.Fields(strings.Repeat("login.failed ", 8)), types(evs))
			assert.Equal(t, 1, distinct(evs, attackEvent.email), "one victim")
			assert.Equal(t, 8, distinct(evs, attackEvent.ip), "from 8 addresses")
		},
		openaisim.AttackPasswordSpraying: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, strings.Fields(strings.Repeat("login.failed ", 6)), types(evs))
			assert.Equal(t, 6, distinct(evs, attackEvent.email), "6 victims")
			assert.Equal(t, 1, distinct(evs, attackEvent.ip), "from one address")
		},
		openaisim.AttackBruteForceSuccess: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, append(strings.Fields(strings.Repeat("login.failed ", 6)), "login.succeeded"), types(evs))
			assert.Equal(t, 1, distinct(evs, attackEvent.email))
			assert.Less(t, evs[5].EffectiveAt, evs[6].EffectiveAt, "the success comes after every failure")
		},
		openaisim.AttackMFAFailures: func(t *testing.T, evs []attackEvent) {
			require.Len(t, evs, 4)
			for _, e := range evs {
				assert.Equal(t, "mfa_failed", e.Payload["error_code"])
			}
			assert.Equal(t, 1, distinct(evs, attackEvent.email))
		},
		openaisim.AttackPrivilegedRoleAssigned: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"user.updated"}, types(evs))
			assert.Equal(t, map[string]any{"role": "owner"}, evs[0].Payload["changes_requested"])
		},
		openaisim.AttackAPIKeyElevatedScopes: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"api_key.created", "api_key.updated"}, types(evs))
			assert.Equal(t, map[string]any{"scopes": []any{"all"}}, evs[0].Payload["data"])
			assert.Equal(t, map[string]any{"scopes": []any{"api_keys:write", "models:write"}}, evs[1].Payload["changes_requested"])
		},
		openaisim.AttackAdminAPIKeyCreated: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, []string{"tenant.admin_api_key.created"}, types(evs))
		},
		openaisim.AttackIPAllowlistChanged: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"ip_allowlist.config.deactivated", "ip_allowlist.deleted"}, types(evs))
			assert.Len(t, evs[0].Payload["configs"], 3)
		},
		openaisim.AttackSCIMChanged: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, []string{"scim.disabled"}, types(evs))
		},
		openaisim.AttackOrgSecuritySettings: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"organization.updated"}, types(evs))
			assert.Equal(t, map[string]any{"api_call_logging": "disabled"}, evs[0].Payload["changes_requested"])
		},
		openaisim.AttackImpossibleTravel: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"login.succeeded", "login.succeeded"}, types(evs))
			assert.Equal(t, 1, distinct(evs, attackEvent.email))
			a, b := evs[0].Actor.Session.IPAddressDetails, evs[1].Actor.Session.IPAddressDetails
			assert.NotEqual(t, a.Country, b.Country)
			km := haversine(t, a, b)
			hours := float64(evs[1].EffectiveAt-evs[0].EffectiveAt) / 3600
			assert.Greater(t, km, 3000.0)
			assert.Greater(t, km/hours, 900.0, "faster than an airliner")
		},
		openaisim.AttackMassDeletion: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, []string{"user.deleted", "user.deleted", "api_key.deleted", "api_key.deleted", "project.deleted", "service_account.deleted"}, types(evs))
			assert.Equal(t, 1, distinct(evs, attackEvent.email), "one actor")
			assert.Equal(t, 6, distinct(evs, func(e attackEvent) string { return e.Payload["id"].(string) }))
		},
		openaisim.AttackCredentialCreationBurst: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, []string{"api_key.created", "service_account.created", "api_key.created", "service_account.created"}, types(evs))
			assert.Equal(t, 1, distinct(evs, attackEvent.email))
		},
		openaisim.AttackInviteExternalDomain: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"invite.sent"}, types(evs))
			email := evs[0].Payload["data"].(map[string]any)["email"].(string)
			assert.Regexp(t, `@(gmail\.com|proton\.me|outlook\.com)$`, email)
		},
		openaisim.AttackCertificateChanged: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"certificate.created", "certificates.activated"}, types(evs))
			assert.Equal(t, evs[0].Payload["id"], evs[1].Payload["certificates"].([]any)[0].(map[string]any)["id"])
		},
		openaisim.AttackRateLimitRaised: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"rate_limit.updated", "rate_limit.updated"}, types(evs))
			assert.Equal(t, evs[0].Payload["id"], evs[1].Payload["id"])
			assert.Equal(t, map[string]any{"max_requests_per_1_minute": 50000.0}, evs[1].Payload["changes_requested"])
		},
		openaisim.AttackDeletedPrincipalKey: func(t *testing.T, evs []attackEvent) {
			require.Equal(t, []string{"user.deleted", "project.updated"}, types(evs))
			require.NotNil(t, evs[1].Actor.APIKey)
			assert.Equal(t, evs[0].Payload["id"], evs[1].Actor.APIKey.User.ID, "the deleted user's key acts afterwards")
			assert.Less(t, evs[0].EffectiveAt, evs[1].EffectiveAt)
		},
		openaisim.AttackWorkloadIdentityTrust: func(t *testing.T, evs []attackEvent) {
			assert.Equal(t, []string{"workload_identity_provider.created"}, types(evs))
		},
	}
	var checked []string
	for k := range checks {
		checked = append(checked, k)
	}
	require.ElementsMatch(t, openaisim.AttackKinds(), checked, "every scenario is checked")
	for kind, check := range checks {
		t.Run(kind, func(t *testing.T) {
			sim, err := openaisim.New(openaisim.Config{Seed: 7}, nil)
			require.NoError(t, err)
			defer sim.Close()
			got, err := sim.Attack(kind, end)
			require.NoError(t, err)
			evs := decodeAttack(t, got)
			for i, e := range evs {
				assert.LessOrEqual(t, e.EffectiveAt, end.Unix())
				assert.GreaterOrEqual(t, e.EffectiveAt, end.Add(-90*time.Second).Unix(), "within the poller's overlap")
				if i > 0 {
					assert.LessOrEqual(t, evs[i-1].EffectiveAt, e.EffectiveAt, "oldest first")
				}
			}
			assert.Equal(t, end.Unix(), evs[len(evs)-1].EffectiveAt)
			check(t, evs)
			assert.Len(t, sim.GroundTruth(), len(got), "served by the API")

			again, err := openaisim.New(openaisim.Config{Seed: 7}, nil)
			require.NoError(t, err)
			defer again.Close()
			same, err := again.Attack(kind, end)
			require.NoError(t, err)
			for i := range got {
				assert.JSONEq(t, string(got[i].Raw), string(same[i].Raw), "deterministic per seed")
			}
		})
	}
}

func TestAttackAllAndErrors(t *testing.T) {
	t.Parallel()
	sim, err := openaisim.New(openaisim.Config{Seed: 1}, nil)
	require.NoError(t, err)
	defer sim.Close()
	evs, err := sim.Attack(openaisim.AttackAll, time.Time{})
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Type] = true
		assert.InDelta(t, time.Now().Unix(), e.EffectiveAt, 120, "ends now by default")
	}
	assert.True(t, seen["login.failed"] && seen["scim.disabled"] && seen["workload_identity_provider.created"], "every scenario: %v", seen)

	_, err = sim.Attack("nope", time.Time{})
	require.ErrorContains(t, err, `unknown attack scenario "nope": want all or one of admin_api_key_created, api_key_elevated_scopes`)
	_, err = sim.Attack(" , ", time.Time{})
	require.ErrorContains(t, err, "no attack scenario named")

	kinds, err := openaisim.ParseAttackKinds("scim_changed, mass_deletion")
	require.NoError(t, err)
	assert.Equal(t, []string{"scim_changed", "mass_deletion"}, kinds)
}

func TestAttackControlAPI(t *testing.T) {
	t.Parallel()
	sim := openaisimtest.Start(t, openaisim.Config{Seed: 3})
	defer http.DefaultClient.CloseIdleConnections()
	resp, err := http.Get(sim.URL() + "/_sim/attacks")
	require.NoError(t, err)
	var kinds []string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&kinds))
	resp.Body.Close()
	assert.Equal(t, openaisim.AttackKinds(), kinds)

	post := func(q url.Values) (int, []byte) {
		resp, err := http.Post(sim.URL()+"/_sim/attacks?"+q.Encode(), "", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	status, body := post(url.Values{"kind": {"credential_stuffing"}, "effective_at": {"1755691200"}})
	require.Equal(t, http.StatusCreated, status, string(body))
	var evs []openaisim.Event
	require.NoError(t, json.Unmarshal(body, &evs))
	require.Len(t, evs, 8)
	assert.Equal(t, int64(1755691200), evs[7].EffectiveAt)

	status, body = post(url.Values{"kind": {"nope"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(body), "unknown attack scenario")
	status, body = post(url.Values{"kind": {"scim_changed"}, "effective_at": {"soon"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, string(body), "effective_at must be Unix seconds")
}

func haversine(t *testing.T, a, b *openaisim.IPAddressDetails) float64 {
	t.Helper()
	f := func(s string) float64 {
		var v float64
		require.NoError(t, json.Unmarshal([]byte(s), &v))
		return v * math.Pi / 180
	}
	lat1, lon1, lat2, lon2 := f(a.Latitude), f(a.Longitude), f(b.Latitude), f(b.Longitude)
	h := math.Pow(math.Sin((lat2-lat1)/2), 2) + math.Cos(lat1)*math.Cos(lat2)*math.Pow(math.Sin((lon2-lon1)/2), 2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}

func TestRunAttacks(t *testing.T) {
	t.Parallel()
	sim, err := openaisim.New(openaisim.Config{Seed: 1}, nil)
	require.NoError(t, err)
	defer sim.Close()
	require.NoError(t, sim.RunAttacks(t.Context(), nil, time.Second), "nothing to do")
	require.NoError(t, sim.RunAttacks(t.Context(), []string{openaisim.AttackSCIMChanged}, 0))
	assert.Len(t, sim.GroundTruth(), 1, "once without an interval")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sim.RunAttacks(ctx, []string{openaisim.AttackSCIMChanged}, 20*time.Millisecond) }()
	require.Eventually(t, func() bool { return len(sim.GroundTruth()) >= 4 }, 5*time.Second, 5*time.Millisecond, "repeated every interval")
	cancel()
	require.NoError(t, <-done)
	require.ErrorContains(t, sim.RunAttacks(t.Context(), []string{"nope"}, 0), "unknown attack scenario")
}
