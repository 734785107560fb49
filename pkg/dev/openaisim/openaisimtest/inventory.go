package openaisimtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/pkg/inventory"
)

// ListInventory lists every endpoint of inventory.Endpoints from base (the
// API base, …/v1) with key, page by page, as a collector does, and returns
// the snapshot (its ID, At and source fields left to the caller) with the
// number of requests made. A listing that fails marks its kind failed; a
// 404 of a single object (a project without a spend limit) is no object.
// Tests use it to snapshot the simulator's inventory.
func ListInventory(ctx context.Context, client *http.Client, base, key string) inventory.Snapshot {
	l := lister{ctx: ctx, client: client, base: strings.TrimSuffix(base, "/"), key: key}
	snap := inventory.Snapshot{At: time.Now().UTC(), Kinds: map[inventory.Kind]inventory.Listing{}}
	scopes := map[inventory.Scope][]string{inventory.ScopeOrganization: {""}}
	for _, e := range inventory.Endpoints {
		listing := snap.Kinds[e.Kind]
		for _, id := range scopes[e.Scope] {
			objs, err := l.list(e, id)
			if err != nil && listing.Err == nil {
				listing.Err = err
			}
			listing.Objects = append(listing.Objects, objs...)
		}
		snap.Kinds[e.Kind] = listing
		switch e.Kind {
		case inventory.KindProject:
			scopes[inventory.ScopeProject] = activeProjects(listing.Objects)
		case inventory.KindUser:
			scopes[inventory.ScopeUser] = ids(listing.Objects)
		case inventory.KindGroup:
			scopes[inventory.ScopeGroup] = ids(listing.Objects)
		}
	}
	snap.Requests = l.requests
	snap.FinishedAt = time.Now().UTC()
	return snap
}

type lister struct {
	ctx       context.Context
	client    *http.Client
	base, key string
	requests  int
}

// list reads every page of endpoint e for scope id.
func (l *lister) list(e inventory.Endpoint, scopeID string) ([]inventory.Object, error) {
	path := strings.NewReplacer("{project_id}", scopeID, "{user_id}", scopeID, "{group_id}", scopeID).Replace(e.Path)
	project := ""
	if e.Scope == inventory.ScopeProject {
		project = scopeID
	}
	var out []inventory.Object
	after := ""
	for {
		q, _ := url.ParseQuery(e.Query)
		if after != "" {
			q.Set("after", after)
		}
		body, status, err := l.get(path, q)
		if err != nil {
			return out, err
		}
		if e.Paging == inventory.PagingNone {
			if status == http.StatusNotFound {
				return nil, nil
			}
			id, err := inventory.ObjectID(e.Kind, scopeID, body)
			if err != nil {
				return nil, err
			}
			return []inventory.Object{{ID: id, ProjectID: project, Raw: body}}, nil
		}
		var page struct {
			Data    []json.RawMessage `json:"data"`
			HasMore bool              `json:"has_more"`
			LastID  *string           `json:"last_id"`
			Next    *string           `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return out, fmt.Errorf("GET %s: %w", path, err)
		}
		for _, raw := range page.Data {
			id, err := inventory.ObjectID(e.Kind, scopeID, raw)
			if err != nil {
				return out, err
			}
			out = append(out, inventory.Object{ID: id, ProjectID: project, Raw: raw})
		}
		if !page.HasMore || len(page.Data) == 0 {
			return out, nil
		}
		switch e.Paging {
		case inventory.PagingNext:
			after = deref(page.Next)
		case inventory.PagingLastID:
			after = deref(page.LastID)
		default:
			var last struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(page.Data[len(page.Data)-1], &last)
			after = last.ID
		}
		if after == "" {
			return out, fmt.Errorf("GET %s: has_more without a cursor", path)
		}
	}
}

func (l *lister) get(path string, q url.Values) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(l.ctx, http.MethodGet, l.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	l.requests++
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return body, resp.StatusCode, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, resp.StatusCode, nil
}

func activeProjects(objs []inventory.Object) []string {
	var out []string
	for _, o := range objs {
		var p struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(o.Raw, &p) == nil && p.Status != "archived" {
			out = append(out, o.ID)
		}
	}
	return out
}

func ids(objs []inventory.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// InventoryInserts renders records as the loader inserts them: two
// INSERT … FORMAT JSONEachRow statements into database db, the snapshot
// records into openai_inventory_snapshots (their summary's fields as
// columns), the object records into openai_inventory_changes (the object
// as its JSON text, receivedAt now). Tests load snapshots with it.
func InventoryInserts(db string, recs []inventory.Record) (changes, snapshots string, err error) {
	var c, s strings.Builder
	fmt.Fprintf(&c, "INSERT INTO `%s`.openai_inventory_changes FORMAT JSONEachRow\n", db)
	fmt.Fprintf(&s, "INSERT INTO `%s`.openai_inventory_snapshots FORMAT JSONEachRow\n", db)
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }
	now := ts(time.Now())
	for _, r := range recs {
		row := map[string]any{"workspaceID": r.WorkspaceID, "sourceID": r.SourceID, "snapshotID": r.SnapshotID,
			"snapshotAt": ts(r.SnapshotAt), "baseline": r.Baseline, "receivedAt": now}
		b := &c
		if r.Kind == inventory.KindSnapshot {
			var sum inventory.Summary
			if err := json.Unmarshal(r.Object, &sum); err != nil {
				return "", "", fmt.Errorf("snapshot %s: %w", r.SnapshotID, err)
			}
			row["finishedAt"], row["complete"], row["counts"], row["failed"], row["requests"] = ts(sum.FinishedAt), sum.Complete, sum.Counts, sum.Failed, sum.Requests
			b = &s
		} else {
			row["kind"], row["objectID"], row["projectID"], row["op"], row["hash"], row["object"] = r.Kind, r.ObjectID, r.ProjectID, r.Op, r.Hash, string(r.Object)
		}
		line, err := json.Marshal(row)
		if err != nil {
			return "", "", err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return c.String(), s.String(), nil
}
