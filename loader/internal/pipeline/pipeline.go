package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/pkg/retry"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// Inserter stores rows in ClickHouse. Insert returns once the rows are
// acknowledged; a repeated call with the same token and rows inserts
// nothing new. Errors caused by the rows themselves wrap
// chwriter.ErrRejected; all others are transient. It must be safe for
// concurrent use.
type Inserter interface {
	Insert(ctx context.Context, token string, rows []*schema.AuditLog) error
}

// Decoder decodes a Confluent wire-format record; *schema.Decoder is one.
// Permanent failures wrap schema.ErrMalformed, schema.ErrUnknownSchema or
// schema.ErrIncompatibleSchema.
type Decoder interface {
	Decode(ctx context.Context, b []byte, l *schema.AuditLog) (int, error)
}

// entry is what the pipeline made of one consumed record. The buffer holds
// pointers: an entry is large (a decoded row) and must not be copied as the
// buffer grows.
type entry struct {
	row    schema.AuditLog
	state  entryState
	reason string // dead: the dlq_reason
	err    string // dead: the dlq_error
}

type entryState uint8

const (
	stateRow     entryState = iota // decoded, to insert
	statePending                   // decoding failed transiently: retried at flush
	stateDead                      // to the dead-letter topic
)

// DLQ reasons set by the loader.
const (
	ReasonAvroDecode         = "avro_decode"
	ReasonInvalidRecord      = "invalid_record"
	ReasonClickHouseRejected = "clickhouse_rejected"
)

// Pipeline moves records from the enriched topic into ClickHouse. Build it
// with New and run it once with Run.
type Pipeline struct {
	cfg    Config
	cl     *kgo.Client
	adm    *kadm.Client
	dec    Decoder
	ins    Inserter
	logger *slog.Logger
	m      *metrics
	now    func() time.Time
	// built is closed once New has set cl and adm: the client starts
	// group management inside kgo.NewClient, so the rebalance callbacks
	// wait for it before using them.
	built chan struct{}

	mu       sync.Mutex // guards everything below; held by the poll loop and the rebalance callbacks
	buf      *batch.Buffer[*entry]
	lag      map[batch.TopicPartition]int64
	paused   map[batch.TopicPartition]bool
	attempt  int       // consecutive failed flushes
	retryAt  time.Time // no flush before this after a failure
	lastErr  error     // the last flush failure, nil after a success
	closing  bool
	assigned map[batch.TopicPartition]bool
	avgItem  int // running mean of the memory per buffered record, for sizing polls
}

// Options are the dependencies of a Pipeline.
type Options struct {
	// ClientOpts are the base kgo options (brokers, TLS, SASL, logging,
	// metrics), e.g. from kafka.Config.Options. The pipeline adds the
	// consumer-group options.
	ClientOpts []kgo.Opt
	Decoder    Decoder
	Inserter   Inserter
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock of the batch policy; time.Now when nil.
	Now func() time.Time
}

// New validates cfg and builds the pipeline and its Kafka client (which
// does not connect yet).
func New(cfg Config, o Options) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating pipeline config: %w", err)
	}
	if o.Decoder == nil || o.Inserter == nil {
		return nil, errors.New("creating pipeline: decoder and inserter are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		cfg: cfg, dec: o.Decoder, ins: o.Inserter, logger: o.Logger.With(slog.String("component", "loader.pipeline")), m: m, now: o.Now,
		built: make(chan struct{}), buf: batch.NewBuffer[*entry](cfg.Batch, o.Now), lag: map[batch.TopicPartition]int64{}, paused: map[batch.TopicPartition]bool{}, assigned: map[batch.TopicPartition]bool{},
		avgItem: avgEntryGuess,
	}
	opts := append(append([]kgo.Opt(nil), o.ClientOpts...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onLost),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	p.cl = cl
	p.adm = kadm.NewClient(cl)
	close(p.built)
	return p, nil
}

// Client returns the pipeline's Kafka client (for readiness pings).
func (p *Pipeline) Client() *kgo.Client { return p.cl }

// Ready reports the last flush failure, or nil when the last flush
// succeeded. Safe for concurrent use.
func (p *Pipeline) Ready(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr != nil {
		return fmt.Errorf("flushing: %w", p.lastErr)
	}
	return nil
}

// Run consumes until ctx is done, then flushes what it holds, commits,
// leaves the group and closes the client, within Config.DrainTimeout. It
// returns nil after a clean stop, or the error that prevented draining
// (the unflushed records stay uncommitted and are read again by the next
// owner). Run must be called once.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.cl.Close()
	for {
		pollCtx, cancel := context.WithDeadline(ctx, p.pollDeadline())
		fs := p.cl.PollRecords(pollCtx, p.room())
		cancel()

		p.mu.Lock()
		p.handleFetches(ctx, fs)
		if ctx.Err() != nil {
			err := p.drain(ctx)
			p.closing = true
			p.mu.Unlock()
			p.cl.AllowRebalance()
			return err
		}
		if p.buf.Ready() && !p.now().Before(p.retryAt) {
			p.flushOverlapped(ctx, len(fs) > 0)
		}
		p.updatePause()
		p.mu.Unlock()
		p.cl.AllowRebalance()
	}
}

// pollDeadline is when the next poll must return: at the batch deadline,
// the retry time, or within a second.
func (p *Pipeline) pollDeadline() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	d := now.Add(time.Second)
	if p.lastErr != nil {
		d = p.retryAt
	} else if t, ok := p.buf.Deadline(); ok && t.Before(d) {
		d = t
	}
	if floor := now.Add(time.Millisecond); d.Before(floor) {
		d = floor
	}
	return d
}

// maxPoll bounds the records one poll returns.
const maxPoll = 10_000

// room bounds a poll to what fits in the buffer, in rows and, at the
// running mean size of a record, in bytes, unless partitions must reach
// the boundary of an interrupted flush (the others are paused then).
func (p *Pipeline) room() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf.Full() && len(p.buf.Held()) > 0 {
		return pollRecords(maxPoll, p.cfg.Batch.MaxBytes, p.avgItem)
	}
	return pollRecords(p.buf.Room(), p.buf.ByteRoom(), p.avgItem)
}

// pollRecords is how many records to ask one poll for: at most rows, and
// about as many as fit in bytes at avg bytes each (at least one, so an
// almost full buffer still fills up and flushes).
func pollRecords(rows, bytes, avg int) int {
	return max(1, min(rows, maxPoll, bytes/max(avg, 1)+1))
}

// updatePause stops fetching while the buffer is full or flushing fails,
// and resumes once it drained. Partitions that must reach the boundary of
// an interrupted flush keep fetching while the buffer is full, or the
// boundary could never be reached.
func (p *Pipeline) updatePause() {
	want := map[batch.TopicPartition]bool{}
	if p.lastErr != nil || p.buf.Full() {
		held := map[batch.TopicPartition]bool{}
		if p.lastErr == nil {
			held = p.buf.Held()
		}
		for tp := range p.assigned {
			if !held[tp] {
				want[tp] = true
			}
		}
	}
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for tp := range want {
		if !p.paused[tp] {
			pause[tp.Topic] = append(pause[tp.Topic], tp.Partition)
		}
	}
	for tp := range p.paused {
		if !want[tp] {
			resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
		}
	}
	if len(pause) > 0 {
		p.cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		p.cl.ResumeFetchPartitions(resume)
	}
	p.paused = want
}

// staged is a poll taken while a flush ran, already decoded.
type staged struct {
	fs      kgo.Fetches
	entries []entry // per record in fs order (EachPartition, then offset)
	err     error   // the first transient decoding failure
}

// flushOverlapped flushes like flushOnce and meanwhile keeps consuming and
// decoding, so decoding the next batch overlaps inserting this one. The
// records it polls meanwhile are added to the buffer after the flush, at
// most as many rows and bytes (record and decoded row, as the buffer
// accounts them) as the buffer has room for once the flushed parts are
// gone, so while a flush runs the loader holds up to twice the batch
// policy, plus the insert's buffers. It polls only when canPoll: the
// loop's last poll returned fetches, which guarantees kgo still counts
// that poll and so keeps rebalances blocked (with BlockRebalanceOnPoll a
// poll issued after AllowRebalance could wait for a rebalance whose
// callbacks wait for p.mu). The caller holds p.mu.
func (p *Pipeline) flushOverlapped(ctx context.Context, canPoll bool) {
	rows, bytes := p.buf.Rows(), p.buf.Bytes()
	for _, part := range p.buf.Parts(false, nil) {
		rows -= len(part.Items)
		for _, it := range part.Items {
			bytes -= it.Size
		}
	}
	maxRows, maxBytes := p.cfg.Batch.MaxRows-rows, p.cfg.Batch.MaxBytes-bytes
	if !canPoll || maxRows <= 0 || maxBytes <= 0 {
		p.flushOnce(ctx, nil)
		return
	}
	sctx, stop := context.WithCancel(ctx)
	var polled []staged
	done := make(chan struct{})
	avg := p.avgItem
	go func() {
		defer close(done)
		n, size := 0, 0
		for n < maxRows && size < maxBytes && sctx.Err() == nil {
			fs := p.cl.PollRecords(sctx, pollRecords(maxRows-n, maxBytes-size, avg))
			st := staged{fs: fs}
			recs := fs.Records()
			st.entries = make([]entry, len(recs))
			st.err = p.decodeAll(ctx, recs, st.entries)
			for i, r := range recs {
				size += itemSize(r, &st.entries[i])
			}
			n += len(recs)
			polled = append(polled, st)
		}
	}()
	p.flushOnce(ctx, nil)
	stop()
	<-done
	for _, st := range polled {
		p.addFetches(st.fs, st.entries, st.err)
	}
}

// handleFetches decodes the records of fs and buffers them.
func (p *Pipeline) handleFetches(ctx context.Context, fs kgo.Fetches) {
	recs := fs.Records()
	es := make([]entry, len(recs))
	p.addFetches(fs, es, p.decodeAll(ctx, recs, es))
}

// addFetches buffers the records of fs (of partitions still assigned)
// with their entries es, parallel to fs.Records(); decErr is the first
// transient decoding failure.
func (p *Pipeline) addFetches(fs kgo.Fetches, es []entry, decErr error) {
	if decErr != nil {
		p.logger.Warn("decoding: schema registry unavailable, retrying at flush", slog.Any("error", decErr))
	}
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, kgo.ErrClientClosed) {
			continue
		}
		p.logger.Warn("fetching", slog.String("topic", fe.Topic), slog.Int("partition", int(fe.Partition)), slog.Any("error", fe.Err))
	}
	i := 0
	fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
		es := es[i : i+len(ftp.Records)]
		i += len(ftp.Records)
		if len(ftp.Records) == 0 {
			return
		}
		tp := batch.TopicPartition{Topic: ftp.Topic, Partition: ftp.Partition}
		if !p.assigned[tp] {
			return // revoked while the fetch was buffered
		}
		last := ftp.Records[len(ftp.Records)-1].Offset
		p.lag[tp] = max(0, ftp.HighWatermark-last-1)
		size := 0
		for j, r := range ftp.Records {
			n := itemSize(r, &es[j])
			p.buf.Add(r, &es[j], n)
			size += n
		}
		// A running mean over polls, weighting the latest by an eighth.
		p.avgItem += (size/len(ftp.Records) - p.avgItem) / 8
		p.m.consumed.Add(float64(len(ftp.Records)))
	})
	var lag int64
	for _, l := range p.lag {
		lag += l
	}
	p.m.lag.Set(float64(lag))
	p.m.buffered.Set(float64(p.buf.Rows()))
	p.m.bufferedBytes.Set(float64(p.buf.Bytes()))
}

// minParallelDecode is the fewest records decoded by more than one
// goroutine.
const minParallelDecode = 512

// decodeAll decodes recs into es (of the same length), split over up to
// GOMAXPROCS goroutines; it returns when all are done. After a transient
// failure (the registry is unreachable) the records not yet decoded are
// left pending, to be decoded at flush; it returns the first such error.
func (p *Pipeline) decodeAll(ctx context.Context, recs []*kgo.Record, es []entry) error {
	workers := min(runtime.GOMAXPROCS(0), len(recs)/minParallelDecode)
	if workers <= 1 {
		return p.decodeRange(ctx, recs, es, nil)
	}
	var (
		down  atomic.Bool
		errs  = make([]error, workers)
		wg    sync.WaitGroup
		chunk = (len(recs) + workers - 1) / workers
	)
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(recs))
		wg.Go(func() { errs[w] = p.decodeRange(ctx, recs[lo:hi], es[lo:hi], &down) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeRange decodes recs into es in order until a transient failure
// (or down, when non-nil, is set by another goroutine); the rest stay
// pending.
func (p *Pipeline) decodeRange(ctx context.Context, recs []*kgo.Record, es []entry, down *atomic.Bool) error {
	for i, r := range recs {
		if down != nil && down.Load() {
			for j := i; j < len(es); j++ {
				es[j].state = statePending
			}
			return nil
		}
		if err := p.decode(ctx, r, &es[i]); err != nil {
			for j := i + 1; j < len(es); j++ {
				es[j].state = statePending
			}
			if down != nil {
				down.Store(true)
			}
			return err
		}
	}
	return nil
}

// decode fills e from r. It returns an error only for transient failures
// (e is then pending); permanent ones make e dead.
func (p *Pipeline) decode(ctx context.Context, r *kgo.Record, e *entry) error {
	_, err := p.dec.Decode(ctx, r.Value, &e.row)
	switch {
	case err == nil:
		if verr := e.row.Validate(); verr != nil {
			*e = entry{state: stateDead, reason: ReasonInvalidRecord, err: verr.Error()}
			return nil
		}
		e.state = stateRow
		return nil
	case errors.Is(err, schema.ErrMalformed), errors.Is(err, schema.ErrUnknownSchema), errors.Is(err, schema.ErrIncompatibleSchema):
		*e = entry{state: stateDead, reason: ReasonAvroDecode, err: err.Error()}
		return nil
	}
	*e = entry{state: statePending}
	return err
}

// backoff returns the wait before retry attempt n (1-based): the retry
// policy from RetryBackoff to RetryBackoffMax.
func (p *Pipeline) backoff(n int) time.Duration {
	return retry.Policy{Initial: p.cfg.RetryBackoff, Max: p.cfg.RetryBackoffMax}.Delay(n)
}

// flushOnce makes one attempt to flush the ready parts (of only, when
// non-nil) and records the outcome for backoff and readiness. It reports
// whether everything it attempted was flushed.
func (p *Pipeline) flushOnce(ctx context.Context, only map[batch.TopicPartition]bool) bool {
	err := p.flush(ctx, only)
	p.m.buffered.Set(float64(p.buf.Rows()))
	p.m.bufferedBytes.Set(float64(p.buf.Bytes()))
	if err == nil {
		if p.lastErr != nil {
			p.logger.Info("flushing works again", slog.Int("after_attempts", p.attempt))
		}
		p.attempt, p.lastErr, p.retryAt = 0, nil, time.Time{}
		return true
	}
	p.attempt++
	p.lastErr = err
	wait := p.backoff(p.attempt)
	p.retryAt = p.now().Add(wait)
	p.m.retries.Inc()
	p.logger.Warn("flushing failed: retrying", slog.Int("attempt", p.attempt), slog.Duration("retry_in", wait), slog.Any("error", err))
	return false
}

// drain flushes everything flushable until it is done or DrainTimeout
// passes. Partitions still waiting for an interrupted flush's boundary
// are left uncommitted, so their next owner repeats that range.
func (p *Pipeline) drain(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DrainTimeout)
	defer cancel()
	for p.flushable(nil) {
		if p.flushOnce(dctx, nil) {
			continue
		}
		select {
		case <-dctx.Done():
			return fmt.Errorf("draining: %d records left unflushed (they stay uncommitted): %w", p.buf.Rows(), p.lastErr)
		case <-time.After(time.Until(p.retryAt)):
		}
	}
	return nil
}

func (p *Pipeline) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	<-p.built
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, ps := range assigned {
		for _, part := range ps {
			p.assigned[batch.TopicPartition{Topic: t, Partition: part}] = true
		}
	}
	// Repeat the range of a flush that was interrupted (its intent is in
	// the committed offset's metadata) so the retried insert carries the
	// same deduplication token.
	offs, err := p.adm.FetchOffsets(ctx, p.cfg.Group)
	if err != nil {
		p.logger.Warn("reading committed offsets for flush intents: replays fall back to the table engine's dedup", slog.Any("error", err))
		return
	}
	for t, ps := range assigned {
		for _, part := range ps {
			o, ok := offs.Lookup(t, part)
			if !ok || o.Err != nil {
				continue
			}
			if last, ok := parseIntent(o.Metadata); ok && last >= o.At {
				tp := batch.TopicPartition{Topic: t, Partition: part}
				p.buf.SetBoundary(tp, last)
				p.logger.Info("repeating an interrupted flush", slog.String("partition", tp.String()), slog.Int64("from", o.At), slog.Int64("to", last))
			}
		}
	}
}

func (p *Pipeline) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	<-p.built
	p.mu.Lock()
	defer p.mu.Unlock()
	tps := toTPs(revoked)
	if !p.closing {
		only := make(map[batch.TopicPartition]bool, len(tps))
		for _, tp := range tps {
			only[tp] = true
		}
		rctx, cancel := context.WithTimeout(ctx, p.cfg.RevokeTimeout)
		for p.flushable(only) && rctx.Err() == nil {
			if p.flushOnce(rctx, only) {
				continue
			}
			select {
			case <-rctx.Done():
			case <-time.After(time.Until(p.retryAt)):
			}
		}
		cancel()
		if p.flushable(only) {
			p.logger.Warn("partitions revoked with unflushed records: the next owner reads them again", slog.Any("error", p.lastErr))
		}
	}
	p.forget(tps)
}

func (p *Pipeline) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	<-p.built
	p.mu.Lock()
	defer p.mu.Unlock()
	tps := toTPs(lost)
	p.logger.Warn("partitions lost: dropping their buffered records, the next owner reads them again", slog.Int("partitions", len(tps)))
	p.forget(tps)
}

func (p *Pipeline) forget(tps []batch.TopicPartition) {
	p.buf.Drop(tps...)
	resume := map[string][]int32{}
	for _, tp := range tps {
		delete(p.lag, tp)
		delete(p.assigned, tp)
		if p.paused[tp] {
			resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
			delete(p.paused, tp)
		}
	}
	if len(resume) > 0 {
		// A partition assigned again later must not stay paused.
		p.cl.ResumeFetchPartitions(resume)
	}
	if p.buf.Rows() == 0 {
		p.lastErr = nil
	}
	p.m.buffered.Set(float64(p.buf.Rows()))
	p.m.bufferedBytes.Set(float64(p.buf.Bytes()))
}

// flushable reports whether the buffer holds parts ready to flush (of
// only, when non-nil), age aside.
func (p *Pipeline) flushable(only map[batch.TopicPartition]bool) bool {
	return len(p.buf.Parts(false, only)) > 0
}

func toTPs(m map[string][]int32) []batch.TopicPartition {
	var out []batch.TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			out = append(out, batch.TopicPartition{Topic: t, Partition: p})
		}
	}
	return out
}
