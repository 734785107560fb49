package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Op is what a record says about its object.
type Op string

// The operations.
const (
	// OpUpsert: the object exists, as Object shows; it appeared, changed,
	// or is written again by a baseline.
	OpUpsert Op = "upsert"
	// OpDelete: the object is gone since the previous snapshot; Object is
	// null.
	OpDelete Op = "delete"
	// OpSnapshot: the record closing a snapshot (Kind KindSnapshot);
	// Object is its Summary.
	OpSnapshot Op = "snapshot"
)

// Record is the value of one record of contract.TopicInventory, JSON.
type Record struct {
	SourceID    string `json:"source_id"`
	WorkspaceID string `json:"workspace_id"`
	// SnapshotID identifies the snapshot within the source; every record
	// of one snapshot carries it (and the same SnapshotAt).
	SnapshotID string `json:"snapshot_id"`
	// SnapshotAt is when the snapshot started (UTC, RFC 3339).
	SnapshotAt time.Time `json:"snapshot_at"`
	Kind       Kind      `json:"kind"`
	// ObjectID is the object's id (ObjectID for role assignments); the
	// snapshot id for KindSnapshot.
	ObjectID string `json:"object_id"`
	// ProjectID is the object's project for the project-scoped kinds (and
	// the project's own id for KindProject), else "".
	ProjectID string `json:"project_id"`
	Op        Op     `json:"op"`
	// Baseline marks the records a baseline snapshot writes for every
	// object, changed or not (and its snapshot record).
	Baseline bool `json:"baseline"`
	// Hash is Hash(Kind, Object) for upserts, the hash of the object's
	// last version for deletes, "" for snapshot records.
	Hash string `json:"hash"`
	// Object is the object as the API returned it (upsert), null (delete)
	// or the Summary (snapshot).
	Object json.RawMessage `json:"object"`
}

// Summary is the Object of a snapshot record.
type Summary struct {
	// Complete is false when a listing failed: its kind has no change
	// records in this snapshot, and its objects keep their previous state.
	Complete bool `json:"complete"`
	// Counts are the objects listed per kind, for every kind listed in
	// full.
	Counts map[Kind]int `json:"counts"`
	// Failed are the kinds at least one of whose listings failed, with the
	// first error.
	Failed map[Kind]string `json:"failed"`
	// Requests is the number of API requests the snapshot made.
	Requests int `json:"requests"`
	// FinishedAt is when the last listing returned.
	FinishedAt time.Time `json:"finished_at"`
}

// Key is a record's Kafka key: <source_id>/<kind>/<object_id>.
func (r Record) Key() string { return r.SourceID + "/" + string(r.Kind) + "/" + r.ObjectID }

// Validate reports what makes r unusable for the inventory tables.
func (r Record) Validate() error {
	var errs []error
	if r.SourceID == "" || r.SnapshotID == "" || r.ObjectID == "" {
		errs = append(errs, errors.New("source_id, snapshot_id and object_id are required"))
	}
	if r.SnapshotAt.IsZero() {
		errs = append(errs, errors.New("snapshot_at is required"))
	}
	switch {
	case r.Kind == KindSnapshot && r.Op != OpSnapshot, r.Kind != KindSnapshot && r.Op == OpSnapshot:
		errs = append(errs, fmt.Errorf("op %q with kind %q: snapshot records (and only they) have op snapshot", r.Op, r.Kind))
	case r.Op != OpUpsert && r.Op != OpDelete && r.Op != OpSnapshot:
		errs = append(errs, fmt.Errorf("op %q: want upsert, delete or snapshot", r.Op))
	}
	if r.Kind != KindSnapshot && len(EndpointsOf(r.Kind)) == 0 {
		errs = append(errs, fmt.Errorf("kind %q: not an inventory kind", r.Kind))
	}
	if r.Op == OpUpsert && !json.Valid(r.Object) {
		errs = append(errs, errors.New("object: an upsert carries the object as JSON"))
	}
	return errors.Join(errs...)
}

// Hash returns "sha256:" and the hex SHA-256 of the object's canonical
// JSON (keys sorted at every level, no insignificant white space, numbers
// as written) without the kind's Volatile top-level fields. Two listings
// of an unchanged object hash alike whatever the API's key order.
func Hash(k Kind, object json.RawMessage) (string, error) {
	canon, err := Canonical(object, Volatile(k))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Canonical returns object re-encoded with sorted keys and without the
// top-level fields drop. It fails on anything but one JSON value.
func Canonical(object json.RawMessage, drop []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonicalizing object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("canonicalizing object: more than one JSON value")
	}
	if m, ok := v.(map[string]any); ok {
		for _, f := range drop {
			delete(m, f)
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonicalizing object: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
