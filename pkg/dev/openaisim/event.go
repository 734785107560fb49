package openaisim

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is one audit-log item held by the simulator, with the metadata the
// endpoint filters on and the exact bytes it serves.
type Event struct {
	// ID is the item's "id".
	ID string `json:"id"`
	// Type is the item's "type".
	Type string `json:"type"`
	// EffectiveAt is the item's "effective_at" (Unix seconds).
	EffectiveAt int64 `json:"effective_at"`
	// TenantScoped reports whether the item is only listed with
	// tenant_only=true.
	TenantScoped bool `json:"tenant_scoped"`
	// ProjectID is project.id, empty when the item has no project.
	ProjectID string `json:"project_id,omitempty"`
	// ActorIDs are the ids actor_ids[] matches: the session or key user id,
	// the key's tracking id and the service-account id.
	ActorIDs []string `json:"actor_ids,omitempty"`
	// ActorEmails are the emails actor_emails[] matches.
	ActorEmails []string `json:"actor_emails,omitempty"`
	// ResourceIDs are the ids resource_ids[] matches: the payload's "id" and
	// "resource_id".
	ResourceIDs []string `json:"resource_ids,omitempty"`
	// Late reports that the event was generated as a late arrival: it became
	// visible long after its effective_at.
	Late bool `json:"late,omitempty"`
	// VisibleAt is when the event became visible through the endpoint (its
	// creation time in the simulator); backlog events share New's time.
	VisibleAt time.Time `json:"visible_at"`
	// Seq is the insertion sequence number; it breaks effective_at ties
	// (higher Seq is listed first).
	Seq uint64 `json:"seq"`
	// Raw is the exact JSON the endpoint serves as this item.
	Raw json.RawMessage `json:"raw"`
}

// parseEvent indexes raw, which must be one JSON object with a non-empty
// string "id" and "type" and an integer "effective_at". Everything else is
// indexed leniently (a malformed actor or project is simply not indexed), so
// tests can serve deliberately odd items. raw is kept byte for byte.
func parseEvent(raw []byte) (Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Event{}, fmt.Errorf("parsing event: %w", err)
	}
	var ev Event
	if json.Unmarshal(fields["id"], &ev.ID) != nil || ev.ID == "" {
		return Event{}, errors.New("parsing event: a non-empty string id is required")
	}
	if json.Unmarshal(fields["type"], &ev.Type) != nil || ev.Type == "" {
		return Event{}, errors.New("parsing event: a non-empty string type is required")
	}
	if json.Unmarshal(fields["effective_at"], &ev.EffectiveAt) != nil {
		return Event{}, errors.New("parsing event: an integer effective_at is required")
	}
	ev.TenantScoped = TenantScoped(ev.Type)
	ev.Raw = append(json.RawMessage(nil), raw...)

	var project Project
	if json.Unmarshal(fields["project"], &project) == nil {
		ev.ProjectID = project.ID
	}
	var actor Actor
	if json.Unmarshal(fields["actor"], &actor) == nil {
		if s := actor.Session; s != nil {
			ev.ActorIDs = appendNonEmpty(ev.ActorIDs, s.User.ID)
			ev.ActorEmails = appendNonEmpty(ev.ActorEmails, s.User.Email)
		}
		if k := actor.APIKey; k != nil {
			ev.ActorIDs = appendNonEmpty(ev.ActorIDs, k.ID)
			if k.User != nil {
				ev.ActorIDs = appendNonEmpty(ev.ActorIDs, k.User.ID)
				ev.ActorEmails = appendNonEmpty(ev.ActorEmails, k.User.Email)
			}
			if k.ServiceAccount != nil {
				ev.ActorIDs = appendNonEmpty(ev.ActorIDs, k.ServiceAccount.ID)
			}
		}
	}
	var payload map[string]json.RawMessage
	if json.Unmarshal(fields[ev.Type], &payload) == nil {
		for _, k := range []string{"id", "resource_id"} {
			var v string
			if json.Unmarshal(payload[k], &v) == nil {
				ev.ResourceIDs = appendNonEmpty(ev.ResourceIDs, v)
			}
		}
	}
	return ev, nil
}

func appendNonEmpty(s []string, v string) []string {
	if v == "" {
		return s
	}
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
