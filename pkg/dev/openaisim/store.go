package openaisim

import (
	"fmt"
	"slices"
	"sort"
)

// store keeps events in listing order (newest first). It is not safe for
// concurrent use; Simulator guards it.
type store struct {
	events  []*Event // sorted: positionOf(events[i]).newerThan(positionOf(events[i+1]))
	byID    map[string]*Event
	nextSeq uint64
}

func newStore() *store { return &store{byID: make(map[string]*Event)} }

// insert assigns ev the next sequence number and adds it. Duplicate ids are
// rejected.
func (s *store) insert(ev *Event) error {
	if _, dup := s.byID[ev.ID]; dup {
		return fmt.Errorf("inserting event: duplicate id %q", ev.ID)
	}
	s.nextSeq++
	ev.Seq = s.nextSeq
	p := positionOf(ev)
	i := sort.Search(len(s.events), func(i int) bool { return !positionOf(s.events[i]).newerThan(p) })
	s.events = slices.Insert(s.events, i, ev)
	s.byID[ev.ID] = ev
	return nil
}

// insertAll inserts evs (assigning sequence numbers in order) with one
// sort instead of one shift per event.
func (s *store) insertAll(evs []*Event) error {
	for _, ev := range evs {
		if _, dup := s.byID[ev.ID]; dup {
			return fmt.Errorf("inserting event: duplicate id %q", ev.ID)
		}
		s.nextSeq++
		ev.Seq = s.nextSeq
		s.byID[ev.ID] = ev
	}
	s.events = append(s.events, evs...)
	slices.SortFunc(s.events, func(a, b *Event) int {
		switch pa, pb := positionOf(a), positionOf(b); {
		case pa.newerThan(pb):
			return -1
		case pb.newerThan(pa):
			return 1
		}
		return 0
	})
	return nil
}

// filter selects events; the zero value selects every non-tenant event.
type filter struct {
	gt, gte, lt, lte *int64
	projectIDs       map[string]bool
	eventTypes       map[string]bool
	actorIDs         map[string]bool
	actorEmails      map[string]bool
	resourceIDs      map[string]bool
	tenantOnly       bool
	// empty is set when the bounds exclude every possible effective_at.
	empty bool
}

// matches reports whether e passes every part of f except the effective_at
// bounds, which page applies through the sort order.
func (f *filter) matches(e *Event) bool {
	if e.TenantScoped != f.tenantOnly {
		return false
	}
	if f.projectIDs != nil && !f.projectIDs[e.ProjectID] {
		return false
	}
	if f.eventTypes != nil && !f.eventTypes[e.Type] {
		return false
	}
	if f.actorIDs != nil && !anyIn(e.ActorIDs, f.actorIDs) {
		return false
	}
	if f.actorEmails != nil && !anyIn(e.ActorEmails, f.actorEmails) {
		return false
	}
	if f.resourceIDs != nil && !anyIn(e.ResourceIDs, f.resourceIDs) {
		return false
	}
	return true
}

func anyIn(vals []string, set map[string]bool) bool {
	for _, v := range vals {
		if set[v] {
			return true
		}
	}
	return false
}

// upper returns the largest effective_at allowed, and whether there is one.
func (f *filter) upper() (int64, bool) {
	var u int64
	has := false
	if f.lte != nil {
		u, has = *f.lte, true
	}
	if f.lt != nil && (!has || *f.lt-1 < u) {
		u, has = *f.lt-1, true
	}
	return u, has
}

// lower returns the smallest effective_at allowed, and whether there is one.
func (f *filter) lower() (int64, bool) {
	var l int64
	has := false
	if f.gte != nil {
		l, has = *f.gte, true
	}
	if f.gt != nil && (!has || *f.gt+1 > l) {
		l, has = *f.gt+1, true
	}
	return l, has
}

// page returns up to limit events matching f, newest first, strictly after
// (older than) *after or strictly before (newer than) *before, and whether
// more matching events lie beyond the page in the walking direction.
func (s *store) page(f *filter, limit int, after, before *position) ([]*Event, bool) {
	if f.empty {
		return nil, false
	}
	upper, hasUpper := f.upper()
	lower, hasLower := f.lower()
	// [start, end) is the slice of candidates, in listing order.
	start, end := 0, len(s.events)
	if hasUpper {
		start = sort.Search(len(s.events), func(i int) bool { return s.events[i].EffectiveAt <= upper })
	}
	if hasLower {
		end = sort.Search(len(s.events), func(i int) bool { return s.events[i].EffectiveAt < lower })
	}
	if after != nil {
		start = max(start, sort.Search(len(s.events), func(i int) bool { return after.newerThan(positionOf(s.events[i])) }))
	}
	if before != nil {
		end = min(end, sort.Search(len(s.events), func(i int) bool { return !positionOf(s.events[i]).newerThan(*before) }))
	}
	out := make([]*Event, 0, min(limit, max(end-start, 0)))
	if before != nil && after == nil {
		// Previous page: the limit matching events closest to the cursor.
		for i := end - 1; i >= start; i-- {
			if !f.matches(s.events[i]) {
				continue
			}
			if len(out) == limit {
				slices.Reverse(out)
				return out, true
			}
			out = append(out, s.events[i])
		}
		slices.Reverse(out)
		return out, false
	}
	for i := start; i < end; i++ {
		if !f.matches(s.events[i]) {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, s.events[i])
	}
	return out, false
}
