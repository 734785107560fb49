package openaisim_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

func TestEventTypeTable(t *testing.T) {
	t.Parallel()
	types := openaisim.EventTypes()
	require.Len(t, types, 147)
	seen := map[string]bool{}
	var tenantNS, tenantScoped int
	for _, et := range types {
		require.False(t, seen[et.Name], "duplicate %s", et.Name)
		seen[et.Name] = true
		if len(et.Name) > 7 && et.Name[:7] == "tenant." {
			tenantNS++
			assert.True(t, et.TenantScoped, et.Name)
		}
		if et.TenantScoped {
			tenantScoped++
		}
		assert.Equal(t, et.TenantScoped, openaisim.TenantScoped(et.Name))
	}
	assert.Equal(t, 88, tenantNS)
	assert.Equal(t, 90, tenantScoped, "tenant.* plus the two role binding types")
	assert.True(t, openaisim.TenantScoped("role.bound_to_resource"))
	assert.True(t, openaisim.TenantScoped("tenant.not_yet_invented"))
	assert.False(t, openaisim.TenantScoped("future.thing.happened"))
}

func TestGeneratorIsDeterministic(t *testing.T) {
	t.Parallel()
	cfg := openaisim.Config{Seed: 42, Backlog: 300, UnknownTypeRate: 0.05, Now: clock}
	a, b := newSim(t, cfg), newSim(t, cfg)
	ta, tb := a.GroundTruth(), b.GroundTruth()
	require.Equal(t, ta, tb)
	ga, gb := a.Generate(20), b.Generate(20)
	require.Equal(t, ga, gb)
	cfg.Seed = 43
	c := newSim(t, cfg)
	assert.NotEqual(t, ta[0].Raw, c.GroundTruth()[0].Raw)
}

func TestBacklogCoversEveryType(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 8, Backlog: 400, UnknownTypeRate: 0.05, BacklogSpan: 24 * time.Hour, Now: clock})
	byType := map[string]int{}
	var noPayloadLogin, nullActor, absentActor, v4, v6 int
	for _, e := range sim.GroundTruth() {
		byType[e.Type]++
		assert.LessOrEqual(t, e.EffectiveAt, fixedNow.Unix())
		assert.GreaterOrEqual(t, e.EffectiveAt, fixedNow.Add(-24*time.Hour).Unix())
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(e.Raw, &m))
		assert.JSONEq(t, `"organization.audit_log"`, string(m["object"]))
		if _, ok := m[e.Type]; !ok && e.Type == "login.succeeded" {
			noPayloadLogin++
		}
		switch a, ok := m["actor"]; {
		case !ok:
			absentActor++
		case bytes.Equal(a, []byte("null")):
			nullActor++
		}
		var it openaisim.AuditLog
		require.NoError(t, json.Unmarshal(e.Raw, &it))
		if it.Actor != nil && it.Actor.Session != nil {
			addr := netip.MustParseAddr(it.Actor.Session.IPAddress)
			n, ok := openaisim.NetworkFor(addr)
			require.True(t, ok, "address %s outside Networks()", addr)
			d := it.Actor.Session.IPAddressDetails
			assert.Equal(t, n.City, d.City)
			assert.Equal(t, n.Country, d.Country)
			assert.Equal(t, n.Latitude(), d.Latitude)
			if addr.Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	for _, et := range openaisim.EventTypes() {
		assert.Positive(t, byType[et.Name], "type %s never generated", et.Name)
	}
	assert.Positive(t, noPayloadLogin)
	assert.Positive(t, nullActor)
	assert.Positive(t, absentActor)
	assert.Positive(t, v4)
	assert.Positive(t, v6)
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	nets := openaisim.Networks()
	var v4, v6 int
	for _, n := range nets {
		a := n.CIDR.Addr()
		assert.True(t, a.IsGlobalUnicast() && !a.IsPrivate(), "%s is not public", n.CIDR)
		for _, doc := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "100.64.0.0/10", "2001:db8::/32"} {
			assert.False(t, netip.MustParsePrefix(doc).Overlaps(n.CIDR), "%s is a special-purpose range", n.CIDR)
		}
		assert.NotEmpty(t, n.City)
		assert.NotZero(t, n.ASN)
		assert.Len(t, n.Country, 2)
		if a.Is4() {
			v4++
		} else {
			v6++
		}
		for _, m := range nets {
			if m.CIDR != n.CIDR {
				assert.False(t, m.CIDR.Overlaps(n.CIDR), "%s overlaps %s", m.CIDR, n.CIDR)
			}
		}
	}
	assert.Equal(t, v4, v6)
	assert.GreaterOrEqual(t, v4, 10)
}

func TestLiveGenerator(t *testing.T) {
	t.Parallel()
	sim := newSim(t, openaisim.Config{Seed: 1, RatePerMinute: 60000, Tick: 5 * time.Millisecond, LateArrivalRate: 0.5, LateArrivalMaxAge: time.Hour, Now: clock})
	ctx := t.Context()
	sim.Start(ctx)
	require.Eventually(t, func() bool { return len(sim.GroundTruth()) >= 20 }, 10*time.Second, 5*time.Millisecond)
	sim.Close()
	var late int
	for _, e := range sim.GroundTruth() {
		if e.Late {
			late++
			assert.Less(t, e.EffectiveAt, fixedNow.Unix())
		}
	}
	assert.Positive(t, late)
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, cfg := range []openaisim.Config{
		{Backlog: -1},
		{RatePerMinute: -1},
		{UnknownTypeRate: 1.5},
		{LateArrivalRate: -0.1},
		{SameSecondBurst: -2},
	} {
		_, err := openaisim.New(cfg, nil)
		assert.Error(t, err, "%+v", cfg)
	}
}
