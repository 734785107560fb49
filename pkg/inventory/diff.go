package inventory

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Object is one listed object.
type Object struct {
	// ID is the object's id (see ObjectID).
	ID string
	// ProjectID is its project for the project-scoped kinds.
	ProjectID string
	// Raw is the object as the API returned it.
	Raw json.RawMessage
}

// ObjectID returns the id an object of kind k is known by: its "id"; for
// the singletons the project's id (or "organization"); for project users
// and rate limits <project id>/<id>; for a role assignment <principal
// id>/<role id>.
func ObjectID(k Kind, scopeID string, raw json.RawMessage) (string, error) {
	var o struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("reading the id of a %s: %w", k, err)
	}
	switch k {
	case KindSpendLimit, KindDataRetention:
		return "organization", nil
	case KindProjectSpendLimit, KindProjectDataRetention:
		return scopeID, nil
	case KindProjectUser, KindProjectRateLimit:
		// Unique within their project only (a user is in several projects;
		// every project has a rl-gpt-4o).
		if o.ID == "" || scopeID == "" {
			return "", fmt.Errorf("a %s needs its id and its project (%q, %q)", k, o.ID, scopeID)
		}
		return scopeID + "/" + o.ID, nil
	case KindRoleAssignment:
		if o.ID == "" || scopeID == "" {
			return "", fmt.Errorf("a role assignment needs its role id and its principal (%q, %q)", o.ID, scopeID)
		}
		return scopeID + "/" + o.ID, nil
	}
	if o.ID == "" {
		return "", fmt.Errorf("a %s without an id", k)
	}
	return o.ID, nil
}

// Listing is what one snapshot listed of one kind.
type Listing struct {
	Objects []Object
	// Err is the first failed request of the kind's listings; the kind's
	// objects are then not compared (nothing is written for them and
	// their previous hashes are kept).
	Err error
}

// Snapshot is one snapshot of one source, ready to be compared.
type Snapshot struct {
	SourceID, WorkspaceID, ID string
	At, FinishedAt            time.Time
	// Baseline writes every listed object, changed or not.
	Baseline bool
	// Requests made.
	Requests int
	Kinds    map[Kind]Listing
}

// Hashes are the previous snapshot's object hashes by "<kind>/<object_id>",
// what the poller keeps in its state between snapshots.
type Hashes map[string]Entry

// Entry is the state kept of one object.
type Entry struct {
	Hash      string
	ProjectID string
}

func hashKey(k Kind, id string) string { return string(k) + "/" + id }

// Diff compares s with the previous snapshot's hashes (nil: none, so s is
// a baseline whatever s.Baseline says) and returns the records to write,
// the snapshot record last, and the hashes to keep for the next snapshot.
// Records are ordered by kind (listing order), then object id. An object
// that cannot be hashed (not JSON) fails the whole diff: the API returned
// something this contract does not describe.
func Diff(prev Hashes, s Snapshot) ([]Record, Hashes, error) {
	baseline := s.Baseline || prev == nil
	next := Hashes{}
	sum := Summary{Complete: true, Counts: map[Kind]int{}, Failed: map[Kind]string{}, Requests: s.Requests, FinishedAt: s.FinishedAt.UTC()}
	var out []Record
	rec := func(k Kind, id, project string, op Op, hash string, obj json.RawMessage) {
		out = append(out, Record{SourceID: s.SourceID, WorkspaceID: s.WorkspaceID, SnapshotID: s.ID, SnapshotAt: s.At.UTC(),
			Kind: k, ObjectID: id, ProjectID: project, Op: op, Baseline: baseline, Hash: hash, Object: obj})
	}
	for _, k := range Kinds() {
		l, listed := s.Kinds[k]
		if !listed || l.Err != nil {
			sum.Complete = false
			if l.Err != nil {
				sum.Failed[k] = l.Err.Error()
			} else {
				sum.Failed[k] = "not listed"
			}
			keepKind(prev, next, k)
			continue
		}
		sum.Counts[k] = len(l.Objects)
		seen := map[string]bool{}
		for _, o := range sortedObjects(l.Objects) {
			if seen[o.ID] {
				return nil, nil, fmt.Errorf("%s %s listed twice", k, o.ID)
			}
			seen[o.ID] = true
			h, err := Hash(k, o.Raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %s: %w", k, o.ID, err)
			}
			key := hashKey(k, o.ID)
			next[key] = Entry{Hash: h, ProjectID: o.ProjectID}
			if old, ok := prev[key]; baseline || !ok || old.Hash != h {
				rec(k, o.ID, o.ProjectID, OpUpsert, h, o.Raw)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(prev)) {
			id, ok := cutKind(key, k)
			if ok && !seen[id] {
				rec(k, id, prev[key].ProjectID, OpDelete, prev[key].Hash, json.RawMessage("null"))
			}
		}
	}
	summary, err := json.Marshal(sum)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the snapshot summary: %w", err)
	}
	rec(KindSnapshot, s.ID, "", OpSnapshot, "", summary)
	return out, next, nil
}

// keepKind copies prev's entries of kind k to next.
func keepKind(prev, next Hashes, k Kind) {
	for key, e := range prev {
		if _, ok := cutKind(key, k); ok {
			next[key] = e
		}
	}
}

func cutKind(key string, k Kind) (string, bool) {
	p := string(k) + "/"
	if len(key) > len(p) && key[:len(p)] == p {
		return key[len(p):], true
	}
	return "", false
}

func sortedObjects(objs []Object) []Object {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b Object) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
