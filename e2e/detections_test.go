package e2e_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/dev/openaisim"
)

// TestDetectionEndToEnd stages a credential-stuffing burst in the
// simulator and follows it through the whole pipeline (poller, enricher,
// loader) into a finding of the detection the loader installed in
// ClickHouse, refreshed on demand (SYSTEM REFRESH VIEW, SYSTEM WAIT VIEW).
func TestDetectionEndToEnd(t *testing.T) {
	p := startPipeline(t, pipelineOptions{
		sim:      openaisim.Config{Seed: 5},
		extraEnv: map[string][]string{"poller": sourceEnv()},
	})
	det := p.db + "_detections"
	p.waitCount("SELECT count() FROM system.tables WHERE database = '"+det+"' AND name = 'detect_credential_stuffing'", 1, time.Minute)

	// The burst spans the 90 s before now, and the rule keys a finding by
	// the 30-minute interval in which its threshold was crossed: a burst
	// across an interval boundary rightly makes two. Start it clear of one.
	if since := time.Since(time.Now().Truncate(30 * time.Minute)); since < 2*time.Minute {
		time.Sleep(2*time.Minute - since)
	}
	burst, err := p.sim.Attack(openaisim.AttackCredentialStuffing, time.Now())
	require.NoError(t, err)
	var ids []string
	var victim struct {
		Actor struct {
			Session struct {
				User struct {
					Email string `json:"email"`
				} `json:"user"`
			} `json:"session"`
		} `json:"actor"`
	}
	for _, e := range burst {
		ids = append(ids, e.ID)
		require.NoError(t, json.Unmarshal(e.Raw, &victim))
	}
	p.waitCount("SELECT count() FROM openai_audit_logs FINAL WHERE eventName = 'login.failed'", len(burst), 2*time.Minute)

	start := time.Now()
	p.mustQuery("SYSTEM REFRESH VIEW " + det + ".detect_credential_stuffing")
	p.mustQuery("SYSTEM WAIT VIEW " + det + ".detect_credential_stuffing")
	t.Logf("refresh of credential_stuffing: %s", time.Since(start))

	rows := p.rows("SELECT rule, toString(severity) AS severity, workspaceID, sourceID, entity, eventIDs, details FROM " + det + ".openai_audit_detections FINAL WHERE rule = 'credential_stuffing'")
	require.Len(t, rows, 1, "one finding: %v", rows)
	f := rows[0]
	assert.Equal(t, "HIGH", f["severity"])
	assert.Equal(t, e2eWorkspace, f["workspaceID"])
	assert.Equal(t, e2eSource, f["sourceID"])
	assert.Equal(t, strings.ToLower(victim.Actor.Session.User.Email), f["entity"])
	assert.Equal(t, toAny(ids), f["eventIDs"], "the burst's events, in time order")
	assert.Equal(t, fmt.Sprint(len(burst)), f["details"].(map[string]any)["distinct_ips"])
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
