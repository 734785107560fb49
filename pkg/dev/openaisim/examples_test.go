package openaisim_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// TestReferenceExamplesParseLikeOutput decodes the documented examples and
// the simulator's own output into the same types and checks that both fill
// the same fields.
func TestReferenceExamplesParseLikeOutput(t *testing.T) {
	t.Parallel()
	specBody, err := os.ReadFile("testdata/spec_example_response.json")
	require.NoError(t, err)
	var spec openaisim.ListResponse
	require.NoError(t, json.Unmarshal(specBody, &spec))
	assert.Equal(t, "list", spec.Object)
	require.NotNil(t, spec.FirstID)
	require.NotNil(t, spec.LastID)
	require.Len(t, spec.Data, 2)

	liveItem, err := os.ReadFile("testdata/reference_live_item.json")
	require.NoError(t, err)

	var docItems []openaisim.AuditLog
	for _, raw := range append(spec.Data, liveItem) {
		var it openaisim.AuditLog
		require.NoError(t, json.Unmarshal(raw, &it))
		docItems = append(docItems, it)
	}
	live := docItems[2]
	assert.Equal(t, "organization.audit_log", live.Object)
	assert.Equal(t, "login.succeeded", live.Type)
	require.NotNil(t, live.Actor)
	require.NotNil(t, live.Actor.Session)
	assert.Equal(t, "55256", live.Actor.Session.IPAddressDetails.ASN)
	assert.Equal(t, "user", docItems[0].Actor.APIKey.Type)
	assert.Equal(t, "a497151ce4338a12c4418c44d375173e", docItems[1].Actor.Session.JA3)

	// The simulator's output decodes into the same types with the same
	// fields populated for the same kinds of actor.
	sim := newSim(t, openaisim.Config{Seed: 21, Backlog: 400, Now: func() time.Time { return fixedNow }})
	resp, items := page(t, get(t, sim.Handler(), adminKey, map[string][]string{"limit": {"100"}}))
	require.NotNil(t, resp.FirstID)
	var sawSession, sawUserKey, sawServiceKey bool
	idRe := regexp.MustCompile(`^audit_log-[A-Za-z0-9]{24}$`)
	for _, it := range items {
		assert.Equal(t, "organization.audit_log", it.Object)
		assert.Regexp(t, idRe, it.ID)
		if it.Actor == nil {
			continue
		}
		switch {
		case it.Actor.Type == "session":
			s := it.Actor.Session
			require.NotNil(t, s)
			assert.NotEmpty(t, s.User.ID)
			assert.NotEmpty(t, s.User.Email)
			assert.NotEmpty(t, s.IPAddress)
			assert.NotEmpty(t, s.UserAgent)
			require.NotNil(t, s.IPAddressDetails)
			assert.NotEmpty(t, s.IPAddressDetails.Latitude)
			sawSession = true
		case it.Actor.APIKey != nil && it.Actor.APIKey.Type == "user":
			assert.True(t, strings.HasPrefix(it.Actor.APIKey.ID, "key_"))
			require.NotNil(t, it.Actor.APIKey.User)
			sawUserKey = true
		case it.Actor.APIKey != nil && it.Actor.APIKey.Type == "service_account":
			require.NotNil(t, it.Actor.APIKey.ServiceAccount)
			sawServiceKey = true
		default:
			t.Fatalf("unexpected actor %+v", it.Actor)
		}
	}
	assert.True(t, sawSession && sawUserKey && sawServiceKey)

	// Both documents decode with the same generic envelope keys.
	var docKeys, simKeys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(specBody, &docKeys))
	body := get(t, sim.Handler(), adminKey, nil).Body.Bytes()
	require.NoError(t, json.Unmarshal(body, &simKeys))
	assert.ElementsMatch(t, keys(docKeys), keys(simKeys))
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
