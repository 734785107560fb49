package schema_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/pkg/schema"
)

// TestEngineInventoryViews checks the inventory read path (0004) on the
// engine: the latest row of each object wins, deletes are left out, copies
// of a row (a replayed topic) change nothing, and an object missing from a
// later baseline is gone even without its delete row.
func TestEngineInventoryViews(t *testing.T) {
	e := openEngine(t)
	e.query("CREATE DATABASE IF NOT EXISTS inv")
	migs, err := schema.Migrations(schema.MigrationOptions{Database: "inv"})
	require.NoError(t, err)
	for _, m := range migs {
		for _, s := range m.Statements {
			e.query(s)
		}
	}
	const changes = "INSERT INTO inv.openai_inventory_changes (workspaceID, sourceID, snapshotID, snapshotAt, kind, objectID, projectID, op, baseline, hash, object, receivedAt) VALUES "
	const snapshots = "INSERT INTO inv.openai_inventory_snapshots (workspaceID, sourceID, snapshotID, snapshotAt, finishedAt, baseline, complete, counts, failed, requests, receivedAt) VALUES "
	key := func(id string, lastUsed int) string {
		return `{"id":"` + id + `","name":"ci","created_at":1700000000,"last_used_at":` + strconv.Itoa(lastUsed) + `,"expires_at":null,"owner":{"type":"user","user":{"id":"user-1","email":"a@example.com"}},"owner_project_access":"active"}`
	}
	for range 2 { // the second round is a replay: the same rows again
		e.query(changes + `('w', 's', 's1', '2026-05-01 10:00:00', 'project_api_key', 'key_a', 'proj_1', 'upsert', true, 'h1', '` + key("key_a", 1700000100) + `', now()),` +
			`('w', 's', 's1', '2026-05-01 10:00:00', 'project_api_key', 'key_b', 'proj_1', 'upsert', true, 'h2', '` + key("key_b", 0) + `', now()),` +
			`('w', 's', 's1', '2026-05-01 10:00:00', 'user', 'user-1', '', 'upsert', true, 'h3', '{"id":"user-1","role":"owner"}', now()),` +
			`('w', 's', 's2', '2026-05-01 10:15:00', 'project_api_key', 'key_b', 'proj_1', 'delete', false, 'h2', 'null', now()),` +
			`('w', 's', 's2', '2026-05-01 10:15:00', 'user', 'user-1', '', 'upsert', false, 'h4', '{"id":"user-1","role":"reader"}', now())`)
		e.query(snapshots + `('w', 's', 's1', '2026-05-01 10:00:00', '2026-05-01 10:00:05', true, true, {'project_api_key': 2, 'user': 1}, {}, 9, now()),` +
			`('w', 's', 's2', '2026-05-01 10:15:00', '2026-05-01 10:15:05', false, true, {'project_api_key': 1, 'user': 1}, {}, 9, now())`)
	}
	assert.Equal(t, "project_api_key\tkey_a\t2026-05-01 10:00:00.000\nuser\tuser-1\t2026-05-01 10:15:00.000\n",
		e.query("SELECT kind, objectID, seenAt FROM inv.openai_inventory_now WHERE workspaceID = 'w' ORDER BY kind, objectID"), "the deleted key is gone, the user's latest row wins")
	assert.Equal(t, `{"id":"user-1","role":"reader"}`+"\n", e.query("SELECT object FROM inv.openai_inventory_now WHERE kind = 'user'"))
	assert.Equal(t, "key_a\tci\t2023-11-14 22:13:20\t2023-11-14 22:15:00\t1970-01-01 00:00:00\tuser\tuser-1\ta@example.com\tactive\n",
		e.query("SELECT objectID, name, createdAt, lastUsedAt, expiresAt, ownerType, ownerID, ownerName, ownerProjectAccess FROM inv.openai_inventory_keys"))

	// A baseline that no longer lists key_a (its delete was lost): gone.
	// One that failed to list users leaves user-1 alone.
	e.query(changes + `('w', 's', 's3', '2026-05-02 10:00:00', 'project_api_key', 'key_c', 'proj_1', 'upsert', true, 'h5', '` + key("key_c", 0) + `', now())`)
	e.query(snapshots + `('w', 's', 's3', '2026-05-02 10:00:00', '2026-05-02 10:00:05', true, false, {'project_api_key': 1}, {'user': '503'}, 9, now())`)
	assert.Equal(t, "project_api_key\tkey_c\nuser\tuser-1\n", e.query("SELECT kind, objectID FROM inv.openai_inventory_now WHERE workspaceID = 'w' ORDER BY kind, objectID"))
}
