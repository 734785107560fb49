package collect

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/poller/internal/health"
	"github.com/auditpipe/auditpipe/poller/internal/state"
	"github.com/auditpipe/auditpipe/poller/internal/upstream"
)

// Stream is one query stream of a source.
type Stream struct {
	// Name keys the stream's cursor in the state: "default" or "tenant".
	Name       string
	TenantOnly bool
	EventTypes []string
	ProjectIDs []string
}

// Source is one organization to collect, with every default applied.
type Source struct {
	ID          string
	WorkspaceID string
	TTLDays     int
	Tags        map[string]string
	Streams     []Stream
	// PollInterval is the pause between two cycles.
	PollInterval time.Duration
	// Backfill is how far back a stream's first cycle reaches.
	Backfill time.Duration
	// RescanWindow is the trailing window walked again every
	// RescanInterval to catch late arrivals.
	RescanWindow   time.Duration
	RescanInterval time.Duration
	// Overlap is subtracted from a cursor to start the next query.
	Overlap time.Duration
	// Slice bounds the time span of one transaction when walking a long
	// window (backfill, re-scan).
	Slice time.Duration
	// MaxSliceEvents makes a slice with more events than this split in
	// two; a one-second slice with more fails the cycle (0: 20,000).
	MaxSliceEvents int
	// MaxRecordBytes is the largest raw record the producer can write
	// (the raw topic's max.message.bytes and the producer's batch limit):
	// a bigger event is dead-lettered, truncated (0: no check).
	MaxRecordBytes int
	// PageSize is the API's limit parameter (1-100; 0: 100).
	PageSize int
	// DedupCapacity bounds the remembered ids; StateLimit bounds the
	// encoded state record in bytes.
	DedupCapacity int
	StateLimit    int
	// AuthRetry is the pause after an authentication failure.
	AuthRetry time.Duration
	// ErrorRetry is the pause after any other failed cycle (0: PollInterval).
	ErrorRetry time.Duration
}

// Lister fetches one page; *upstream.Client implements it.
type Lister interface {
	List(ctx context.Context, q upstream.Query) (upstream.Page, error)
}

// Committer writes records atomically: all of them become visible to
// read_committed readers, or none. Commit blocks until the outcome is
// known; any error means the outcome may be unknown and the caller must
// reload its state from Kafka before going on.
type Committer interface {
	Commit(ctx context.Context, records []*kgo.Record) error
}

// Topics names where records go. StatePartition is the state topic
// partition that holds the source's state; DLQ takes the events the raw
// topic cannot hold.
type Topics struct {
	Raw            string
	State          string
	DLQ            string
	StatePartition int32
}

// Options are a Collector's collaborators.
type Options struct {
	API       Lister
	Committer Committer
	Codec     *state.Codec
	Topics    Topics
	Metrics   *Metrics
	// Health is told about the source's progress and failures; it is
	// shared by the successive collectors of the source (nil: a private
	// one).
	Health *health.Source
	// Scrubber removes every configured secret from upstream text (event
	// ids, cursors) before it is logged or put in an error.
	Scrubber *config.Scrubber
	Logger   *slog.Logger
	// Version is the poller_version header.
	Version string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Slices, when set, bounds the slices held in memory at once across
	// the collectors that share it: a slice takes a slot from its first
	// page to its commit.
	Slices *Slots
}

// Slots bounds how many slices the collectors sharing it hold at once.
// It is safe for concurrent use.
type Slots struct{ c chan struct{} }

// NewSlots returns n slots (at least 1).
func NewSlots(n int) *Slots { return &Slots{c: make(chan struct{}, max(n, 1))} }

// acquire takes a slot, waiting until one is free or ctx is done.
func (s *Slots) acquire(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case s.c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release returns a slot taken by acquire.
func (s *Slots) release() {
	if s != nil {
		<-s.c
	}
}

// Collector collects one source. It is not safe for concurrent use: run
// one per source, and only in the replica that owns the source.
type Collector struct {
	src     Source
	o       Options
	st      state.State
	headers []kgo.RecordHeader
	// headerBytes is what the headers add to a raw record.
	headerBytes int
	log         *slog.Logger
	commits     int
	// failures spaces the cycles after failed ones.
	failures *retry.Backoff
}

// Commits returns how many transactions the collector committed.
func (c *Collector) Commits() int { return c.commits }

// ErrKafka wraps every failure to commit. After it the collector's state
// may differ from Kafka's: build a new Collector from reloaded state.
var ErrKafka = errors.New("kafka transaction failed")

// errTooMany aborts walking a slice that holds more than MaxSliceEvents.
var errTooMany = errors.New("slice holds too many events")

// New returns a Collector resuming from st (state.New for a first start).
func New(src Source, st state.State, o Options) *Collector {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Health == nil {
		o.Health = health.NewSource(health.Rule{StallAfter: 3 * src.PollInterval, FailingAfter: 3})
		o.Health.Start(o.Now())
	}
	src.MaxSliceEvents = cmp.Or(max(src.MaxSliceEvents, 0), 20_000)
	src.PageSize = cmp.Or(max(src.PageSize, 0), 100)
	if st.Streams == nil {
		st.Streams = map[string]state.Stream{}
	}
	h := []kgo.RecordHeader{
		{Key: contract.HeaderWorkspaceID, Value: []byte(src.WorkspaceID)},
		{Key: contract.HeaderSourceID, Value: []byte(src.ID)},
		{Key: contract.HeaderSourceType, Value: []byte(contract.SourceTypeOpenAI)},
		{Key: contract.HeaderSourceTTL, Value: []byte(strconv.Itoa(src.TTLDays))},
		{Key: contract.HeaderPollerVersion, Value: []byte(o.Version)},
	}
	if len(src.Tags) > 0 {
		tags, _ := json.Marshal(src.Tags) // map[string]string always marshals
		h = append(h, kgo.RecordHeader{Key: contract.HeaderTags, Value: tags})
	}
	hb := len(contract.HeaderReceivedAt) + len(time.RFC3339Nano) + 2*binary.MaxVarintLen32
	for _, x := range h {
		hb += len(x.Key) + len(x.Value) + 2*binary.MaxVarintLen32
	}
	initial := cmp.Or(src.ErrorRetry, src.PollInterval)
	return &Collector{src: src, o: o, st: st, headers: h, headerBytes: hb,
		log:      o.Logger.With(slog.String("source_id", src.ID)),
		failures: retry.NewBackoff(retry.Policy{Initial: initial, Max: 10 * initial})}
}

// State returns the collector's current state (for tests).
func (c *Collector) State() state.State { return c.st }

// Run polls until ctx is done (returning nil) or a commit fails (returning
// an error wrapping ErrKafka). API failures are logged, counted and
// retried on the next cycle; they never end Run.
func (c *Collector) Run(ctx context.Context) error {
	for {
		wait, err := c.Cycle(ctx)
		if err != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Cycle polls every stream once (re-scanning those that are due) and
// returns how long to wait before the next cycle: the poll interval after
// a completed cycle, the shared backoff after failed ones. The error is
// non-nil only for Kafka failures (wrapping ErrKafka) and never for ctx
// ending.
func (c *Collector) Cycle(ctx context.Context) (time.Duration, error) {
	now := c.o.Now()
	var failure error
	for _, s := range c.src.Streams {
		if ctx.Err() != nil {
			return 0, nil
		}
		err := c.pollStream(ctx, s, now)
		if errors.Is(err, ErrKafka) {
			return 0, err
		}
		if err != nil && ctx.Err() == nil {
			failure = err
			if upstream.ClassOf(err) == upstream.ClassAuth {
				break
			}
		}
	}
	if ctx.Err() != nil {
		return 0, nil
	}
	c.updateLag(now)
	if failure != nil {
		return c.cycleFailed(failure), nil
	}
	c.failures.Reset()
	c.o.Health.Succeeded(c.o.Now())
	c.o.Metrics.authOK.WithLabelValues(c.src.ID).Set(1)
	c.o.Metrics.lastSuccess.WithLabelValues(c.src.ID).Set(float64(c.o.Now().UnixMilli()) / 1000)
	return c.src.PollInterval, nil
}

// cycleFailed reports a failed cycle (health, metrics, log) and returns
// the wait before the next one.
func (c *Collector) cycleFailed(err error) time.Duration {
	c.o.Health.Failed(ProblemOf(err))
	wait := c.failures.Next()
	switch class := upstream.ClassOf(err); {
	case class == upstream.ClassAuth:
		c.o.Metrics.authOK.WithLabelValues(c.src.ID).Set(0)
		c.log.Error("source cannot authenticate; retrying slowly", slog.String("error", err.Error()),
			slog.Duration("retry_in", c.src.AuthRetry))
		return c.src.AuthRetry
	case errors.As(err, new(*PaginationError)):
		c.o.Metrics.errors.WithLabelValues(c.src.ID, ClassPagination).Inc()
		c.log.Error("the API's pagination does not end: nothing of the slice is published; retrying with backoff",
			slog.String("error", err.Error()), slog.Duration("retry_in", wait))
	case class == upstream.ClassRedirect:
		c.log.Error("the API redirects; redirects are never followed: retrying with backoff",
			slog.String("error", err.Error()), slog.Duration("retry_in", wait))
	default:
		c.log.Warn("poll cycle failed; retrying with backoff", slog.String("error", err.Error()), slog.Duration("retry_in", wait))
	}
	return wait
}

func (c *Collector) pollStream(ctx context.Context, s Stream, now time.Time) error {
	cur := c.st.Streams[s.Name]
	nowSec := now.Unix()
	if !cur.Initialized {
		from := now.Add(-c.src.Backfill).Unix()
		c.log.Info("backfilling stream", slog.String("stream", s.Name), slog.Time("from", time.Unix(from, 0)))
		return c.walk(ctx, s, from, now, func(st *state.Stream) {
			st.Initialized = true
			st.LastRescan = nowSec
		})
	}
	if err := c.walk(ctx, s, cur.Cursor-int64(c.src.Overlap/time.Second), now, nil); err != nil {
		return err
	}
	if time.Duration(nowSec-c.st.Streams[s.Name].LastRescan)*time.Second < c.src.RescanInterval {
		return nil
	}
	from := now.Add(-c.src.RescanWindow).Unix()
	c.log.Debug("re-scanning stream", slog.String("stream", s.Name), slog.Time("from", time.Unix(from, 0)))
	return c.walk(ctx, s, from, now, func(st *state.Stream) { st.LastRescan = nowSec })
}

// fetched is an item with the arrival time of its page.
type fetched struct {
	upstream.Item
	arrived time.Time
	// remembered is the time the dedup memory keeps for the item: its
	// effective_at, or for an event outside the window asked for
	// (effective_at 0, in the future: a broken upstream) the second its
	// page arrived, so that it is remembered for a whole re-scan window
	// after it was seen whatever its effective_at.
	remembered int64
	// oversize is the record size of an event the raw topic cannot hold
	// (0: it fits); Raw then keeps only its first dlqBodyBytes.
	oversize int
	typ      string // the type of an oversized event
}

// walk collects [from, now] in slices of at most Slice, oldest slice
// first, committing each slice with the state in one transaction. done is
// applied to the stream's state in the last slice's transaction.
func (c *Collector) walk(ctx context.Context, s Stream, from int64, now time.Time, done func(*state.Stream)) error {
	nowSec := now.Unix()
	maxSpan := max(int64(c.src.Slice/time.Second), 1)
	span := maxSpan
	lower := from
	for {
		upper := lower + span
		open := upper > nowSec
		q := upstream.Query{GTE: lower, EventTypes: s.EventTypes, ProjectIDs: s.ProjectIDs, TenantOnly: s.TenantOnly, Limit: c.src.PageSize}
		if !open {
			q.LT = upper
		}
		if err := c.o.Slices.acquire(ctx); err != nil {
			return err
		}
		items, arrivals, err := c.fetchSlice(ctx, s.Name, q, span)
		if errors.Is(err, errTooMany) {
			c.o.Slices.release()
			span = max(span/2, 1)
			c.log.Info("slice too large, halving it", slog.String("stream", s.Name), slog.Int64("span_seconds", span))
			continue
		}
		if err != nil {
			c.o.Slices.release()
			return err
		}
		next := c.advance(s.Name, lower, upper, open, items, nowSec)
		if open && done != nil {
			done(&next)
		}
		err = c.commitSlice(ctx, s.Name, next, items, arrivals, now)
		c.o.Slices.release()
		if err != nil {
			return err
		}
		if open {
			return nil
		}
		lower = upper
		// Grow the span again only when this slice was less than half full,
		// so a dense backlog does not fetch an oversized slice (and throw
		// it away) every other time.
		if len(items) < c.src.MaxSliceEvents/2 {
			span = min(span*2, maxSpan)
		}
	}
}

// advance returns the stream's state once a slice [lower, upper) (open:
// up to now) with items is committed: its cursor moves past the slice and
// its newest event, never beyond now.
func (c *Collector) advance(stream string, lower, upper int64, open bool, items []fetched, nowSec int64) state.Stream {
	next := c.st.Streams[stream]
	cursor := max(next.Cursor, lower)
	if !open {
		cursor = max(cursor, upper)
	}
	for _, it := range items {
		cursor = max(cursor, min(it.EffectiveAt, nowSec))
	}
	next.Cursor = cursor
	return next
}

// fetchSlice pages through q, a slice of span seconds of stream, until
// has_more is false. It returns the items and the arrival time of each
// page. Once more than MaxSliceEvents items came it stops with errTooMany,
// or, when span is one second (which cannot be split), with a
// *PaginationError; so it does when a cursor repeats or cycles, and past
// maxPages pages.
func (c *Collector) fetchSlice(ctx context.Context, stream string, q upstream.Query, span int64) ([]fetched, []time.Time, error) {
	var items []fetched
	var arrivals []time.Time
	requested := map[string]int{} // the after cursors of the slice, with their page number
	pages := 0
	for {
		page, err := c.o.API.List(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		pages++
		arrived := c.o.Now()
		arrivals = append(arrivals, arrived)
		c.o.Metrics.pages.WithLabelValues(c.src.ID).Inc()
		if page.Documents > 1 {
			c.o.Metrics.concatenated.WithLabelValues(c.src.ID).Inc()
		}
		for _, it := range page.Items {
			items = append(items, c.arrival(it, q, arrived))
		}
		fail := func(what string) error {
			return &PaginationError{Stream: stream, GTE: q.GTE, LT: q.LT, Pages: pages, Events: len(items), Cursor: c.text(q.After), What: what}
		}
		if len(items) > c.src.MaxSliceEvents {
			if span > 1 {
				return nil, nil, errTooMany
			}
			return nil, nil, fail(fmt.Sprintf("more than collection.max_slice_events (%d) events in one second, which cannot be split: raise collection.max_slice_events", c.src.MaxSliceEvents))
		}
		if !page.HasMore || len(page.Items) == 0 || page.LastID == nil || *page.LastID == "" {
			return items, arrivals, nil
		}
		next := *page.LastID
		switch at, seen := requested[next]; {
		case next == q.After:
			return nil, nil, fail("the API answered with has_more=true and the cursor it was asked for as last_id: the cursor did not advance")
		case seen:
			return nil, nil, fail(fmt.Sprintf("the API answered with has_more=true and last_id %q, already requested at page %d: the cursors cycle", c.text(next), at))
		case pages >= c.maxPages():
			return nil, nil, fail(fmt.Sprintf("%d pages for at most collection.max_slice_events (%d) events at page_size %d: the API's pages do not end", pages, c.src.MaxSliceEvents, c.src.PageSize))
		}
		requested[next] = pages + 1
		q.After = next
	}
}

// maxPages bounds the pages of one slice: twice what MaxSliceEvents
// events take in full pages, and two more.
func (c *Collector) maxPages() int {
	return 2*((c.src.MaxSliceEvents+c.src.PageSize-1)/c.src.PageSize) + 2
}

// arrival returns item it of a page of q that arrived at arrived, with the
// time the dedup memory keeps for it and, for an event the raw topic
// cannot hold, its size (its bytes then cut to what its dead letter
// keeps).
func (c *Collector) arrival(it upstream.Item, q upstream.Query, arrived time.Time) fetched {
	f := fetched{Item: it, arrived: arrived, remembered: it.EffectiveAt}
	if eff := it.EffectiveAt; eff < q.GTE || (q.LT != 0 && eff >= q.LT) || eff > arrived.Unix() {
		f.remembered = arrived.Unix()
	}
	if size := c.recordBytes(it); c.src.MaxRecordBytes > 0 && size > c.src.MaxRecordBytes {
		f.oversize = size
		f.Raw = bytes.Clone(f.Raw[:min(len(f.Raw), dlqBodyBytes)]) // not the page's bytes: they can go
		f.typ = eventType(it.Raw)
	}
	return f
}

// recordBytes bounds the size of item's raw record in a batch of its own:
// batch header, record framing (length, attributes, timestamp and offset
// deltas, key and value lengths, header count: at most 41 bytes), key,
// value and headers.
func (c *Collector) recordBytes(it upstream.Item) int {
	const batchHeader, recordFraming = 61, 64
	return batchHeader + recordFraming + len(it.ID) + len(it.Raw) + c.headerBytes
}

// text is upstream text fit for logs and errors: secrets scrubbed, cut.
func (c *Collector) text(s string) string {
	s = c.o.Scrubber.Scrub(s)
	if len(s) > maxText {
		s = strings.ToValidUTF8(s[:maxText], "") + "…"
	}
	return s
}

// maxText bounds the upstream text (ids, cursors, types) in a log line,
// an error or a dead letter's error.
const maxText = 200

// commitSlice publishes the items not yet published, oldest first, with
// the source's next state, in one transaction. The next state is built on
// a copy of the current one: the in-memory state (dedup memory included)
// changes only when the commit succeeds.
func (c *Collector) commitSlice(ctx context.Context, stream string, next state.Stream, items []fetched, arrivals []time.Time, now time.Time) error {
	fresh, dups := c.unpublished(stream, items)
	if len(fresh) == 0 && c.st.Streams[stream] == next {
		c.o.Metrics.duplicates.WithLabelValues(c.src.ID).Add(float64(dups))
		return nil
	}
	nextSt, value, err := c.nextState(stream, next, fresh, now)
	if err != nil {
		c.o.Metrics.errors.WithLabelValues(c.src.ID, ClassState).Inc()
		return fmt.Errorf("%w: encoding state: %w", ErrKafka, err)
	}
	if err := c.o.Committer.Commit(ctx, c.records(fresh, value)); err != nil {
		c.o.Metrics.txns.WithLabelValues(c.src.ID, "failed").Inc()
		c.o.Metrics.errors.WithLabelValues(c.src.ID, ClassKafka).Inc()
		return fmt.Errorf("%w: %w", ErrKafka, err)
	}
	c.st = nextSt
	c.commits++
	c.o.Health.Progressed(c.o.Now())
	c.committed(stream, next, fresh, dups, len(value), arrivals)
	return nil
}

// unpublished orders items oldest first and returns those not yet
// published (each id once), and how many it left out.
func (c *Collector) unpublished(stream string, items []fetched) ([]fetched, int) {
	// The API lists newest first; reverse, then order by effective_at
	// (stable, so ties keep the API's relative order reversed).
	slices.Reverse(items)
	slices.SortStableFunc(items, func(a, b fetched) int { return cmp.Compare(a.EffectiveAt, b.EffectiveAt) })

	fresh := make([]fetched, 0, len(items))
	inSlice := make(map[string]bool, len(items))
	walked := int64(math.MinInt64) // how far this stream has walked
	if st := c.st.Streams[stream]; st.Initialized {
		walked = st.Cursor
	}
	for _, it := range items {
		if inSlice[it.ID] || c.st.Published(it.ID, it.EffectiveAt, walked) {
			continue
		}
		inSlice[it.ID] = true
		fresh = append(fresh, it)
	}
	return fresh, len(items) - len(fresh)
}

// nextState returns, on a copy of the current state, the state after
// publishing fresh with the stream at next, and its encoding: the dedup
// memory remembers fresh, forgets what no later query can reach, and is
// trimmed to its capacity and to the size limit of the state record.
func (c *Collector) nextState(stream string, next state.Stream, fresh []fetched, now time.Time) (state.State, []byte, error) {
	nextSt := c.st.Clone()
	nextSt.Streams[stream] = next
	nextSt.CommittedAt = now
	for _, it := range fresh {
		nextSt.Seen.Add(it.ID, it.remembered)
	}
	// The dedup memory must cover every window a later query can reach:
	// the re-scan window and each stream's overlap below its cursor.
	horizon := now.Add(-c.src.RescanWindow).Unix()
	for _, s := range nextSt.Streams {
		if s.Initialized {
			horizon = min(horizon, s.Cursor)
		}
	}
	horizon -= int64(c.src.Overlap/time.Second) + 1
	nextSt.Seen.Expire(horizon)
	evicted := nextSt.Trim(c.src.DedupCapacity)
	value, err := c.o.Codec.Encode(nextSt, c.src.StateLimit)
	for capacity := nextSt.Seen.Len(); errors.Is(err, state.ErrTooLarge) && capacity > 0; {
		capacity = capacity * 9 / 10
		evicted += nextSt.Trim(capacity)
		value, err = c.o.Codec.Encode(nextSt, c.src.StateLimit)
	}
	if err != nil {
		return state.State{}, nil, err
	}
	if evicted > 0 {
		c.o.Metrics.dedupEvicted.WithLabelValues(c.src.ID).Add(float64(evicted))
		c.log.Warn("dedup memory full: forgot the oldest ids; events at or below the floor now count as published",
			slog.Int("forgotten", evicted), slog.Time("floor", time.Unix(nextSt.Floor, 0)), slog.Int("capacity", c.src.DedupCapacity))
	}
	return nextSt, value, nil
}

// records returns the transaction's records: fresh on the raw topic, with
// the source's headers and their page's arrival time (an event the raw
// topic cannot hold as a dead letter instead), then the state.
func (c *Collector) records(fresh []fetched, state []byte) []*kgo.Record {
	recs := make([]*kgo.Record, 0, len(fresh)+1)
	for _, it := range fresh {
		h := make([]kgo.RecordHeader, len(c.headers), len(c.headers)+1)
		copy(h, c.headers)
		h = append(h, kgo.RecordHeader{Key: contract.HeaderReceivedAt, Value: []byte(it.arrived.UTC().Format(time.RFC3339Nano))})
		r := &kgo.Record{Topic: c.o.Topics.Raw, Key: []byte(it.ID), Value: it.Raw, Headers: h}
		if it.oversize > 0 {
			r = c.deadLetter(r, it)
		}
		recs = append(recs, r)
	}
	return append(recs, &kgo.Record{Topic: c.o.Topics.State, Partition: c.o.Topics.StatePartition, Key: []byte(c.src.ID), Value: state})
}

// dlqBodyBytes is how much of an oversized event its dead letter keeps.
const dlqBodyBytes = 16 << 10

// ReasonTooLarge is the dead-letter reason of an event over the raw
// topic's record limit.
const ReasonTooLarge = "too_large"

// deadLetter returns the dead letter of raw record r of oversized item it:
// never in a topic, so dlq_partition and dlq_offset are -1.
func (c *Collector) deadLetter(r *kgo.Record, it fetched) *kgo.Record {
	r.Partition, r.Offset = -1, -1
	msg := fmt.Sprintf("event %s of type %s is %d bytes as a record, over the %d bytes the raw topic takes (its max.message.bytes and the producer's batch limit); the value holds its first %d bytes",
		c.text(it.ID), c.text(it.typ), it.oversize, c.src.MaxRecordBytes, len(it.Raw))
	return contract.DeadLetter(c.o.Topics.DLQ, r, contract.StagePoller, ReasonTooLarge, msg, it.arrived)
}

// eventType reads the type of an event, "" when it has no string type.
func eventType(raw []byte) string {
	var h struct {
		Type json.RawMessage `json:"type"`
	}
	var t string
	if json.Unmarshal(raw, &h) != nil || json.Unmarshal(h.Type, &t) != nil {
		return ""
	}
	return t
}

// committed records a committed slice in the metrics and the log.
func (c *Collector) committed(stream string, next state.Stream, fresh []fetched, dups, stateBytes int, arrivals []time.Time) {
	at := c.o.Now()
	m := c.o.Metrics
	published := len(fresh)
	for _, it := range fresh {
		if it.oversize == 0 {
			continue
		}
		published--
		m.dlq.Add(ReasonTooLarge, 1)
		c.log.Warn("event over the raw topic's record limit: dead-lettered with its first bytes",
			slog.String("event_id", c.text(it.ID)), slog.String("type", c.text(it.typ)),
			slog.Int("bytes", it.oversize), slog.Int("limit", c.src.MaxRecordBytes), slog.String("topic", c.o.Topics.DLQ))
	}
	m.txns.WithLabelValues(c.src.ID, "committed").Inc()
	m.published.WithLabelValues(c.src.ID).Add(float64(published))
	m.duplicates.WithLabelValues(c.src.ID).Add(float64(dups))
	m.dedupSize.WithLabelValues(c.src.ID).Set(float64(c.st.Seen.Len()))
	m.stateBytes.WithLabelValues(c.src.ID).Set(float64(stateBytes))
	for _, a := range arrivals {
		m.pageCommit.WithLabelValues(c.src.ID).Observe(at.Sub(a).Seconds())
	}
	c.log.Debug("committed slice", slog.String("stream", stream), slog.Int("published", published),
		slog.Int("duplicates", dups), slog.Time("cursor", time.Unix(next.Cursor, 0)), slog.Int("state_bytes", stateBytes))
}

func (c *Collector) updateLag(now time.Time) {
	oldest := now.Unix()
	for _, s := range c.src.Streams {
		if st, ok := c.st.Streams[s.Name]; ok && st.Initialized {
			oldest = min(oldest, st.Cursor)
		}
	}
	c.o.Metrics.lag.WithLabelValues(c.src.ID).Set(float64(now.Unix() - oldest))
}
