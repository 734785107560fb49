package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Item is one audit-log object of a page. Raw holds its bytes exactly as
// the API sent them; ID and EffectiveAt are read from it for dedup and
// windows.
type Item struct {
	ID          string
	EffectiveAt int64
	Raw         json.RawMessage
}

// Page is one decoded response of the list endpoint.
type Page struct {
	// Items are in the API's order (newest first).
	Items []Item
	// FirstID and LastID are the page's cursors; nil on an empty page.
	FirstID, LastID *string
	// HasMore says whether another page follows in the walking direction.
	HasMore bool
	// Documents is the number of JSON documents the body held: 1 normally,
	// more when the API concatenated copies of the page (seen in production).
	Documents int
	// RequestID is the response's x-request-id, for support cases.
	RequestID string
}

// ErrMalformed is wrapped by every page decoding error.
var ErrMalformed = errors.New("malformed audit log page")

type envelope struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
	HasMore *bool             `json:"has_more"`
}

type itemHead struct {
	ID          *string `json:"id"`
	EffectiveAt *int64  `json:"effective_at"`
}

// DecodePage decodes a list response body. It accepts a body holding
// several concatenated JSON documents (seen in production) when they agree:
// equal cursors and has_more, and equal bytes for every id they share; their
// items are then merged in order of first appearance. Anything else, an
// empty body, trailing garbage, a truncated document, a document without
// data or has_more, or an item without a string id and an integer
// effective_at, fails the whole page with an error wrapping ErrMalformed:
// a page is used whole or not at all.
func DecodePage(body []byte) (Page, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var docs []envelope
	for {
		var env envelope
		err := dec.Decode(&env)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Page{}, fmt.Errorf("%w: decoding document %d: %v", ErrMalformed, len(docs)+1, err)
		}
		if env.Data == nil {
			return Page{}, fmt.Errorf("%w: document %d has no data array", ErrMalformed, len(docs)+1)
		}
		if env.HasMore == nil {
			return Page{}, fmt.Errorf("%w: document %d has no has_more", ErrMalformed, len(docs)+1)
		}
		docs = append(docs, env)
	}
	if len(docs) == 0 {
		return Page{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	first := docs[0]
	p := Page{FirstID: first.FirstID, LastID: first.LastID, HasMore: *first.HasMore, Documents: len(docs)}
	seen := make(map[string]int, len(first.Data))
	for d, env := range docs {
		if d > 0 && (!sameID(env.FirstID, first.FirstID) || !sameID(env.LastID, first.LastID) || *env.HasMore != p.HasMore) {
			return Page{}, fmt.Errorf("%w: %d concatenated documents disagree on their cursors", ErrMalformed, len(docs))
		}
		for i, raw := range env.Data {
			it, err := decodeItem(raw)
			if err != nil {
				return Page{}, fmt.Errorf("%w: document %d item %d: %v", ErrMalformed, d+1, i, err)
			}
			if at, dup := seen[it.ID]; dup {
				if !bytes.Equal(p.Items[at].Raw, it.Raw) {
					return Page{}, fmt.Errorf("%w: concatenated documents hold different bodies for id %q", ErrMalformed, it.ID)
				}
				continue
			}
			seen[it.ID] = len(p.Items)
			p.Items = append(p.Items, it)
		}
	}
	return p, nil
}

func decodeItem(raw json.RawMessage) (Item, error) {
	var h itemHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return Item{}, err
	}
	if h.ID == nil || *h.ID == "" {
		return Item{}, errors.New("missing id")
	}
	if h.EffectiveAt == nil {
		return Item{}, errors.New("missing effective_at")
	}
	return Item{ID: *h.ID, EffectiveAt: *h.EffectiveAt, Raw: raw}, nil
}

func sameID(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
