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
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/enricher/internal/normalize"
	"github.com/auditpipe/auditpipe/pkg/contract"
)

// Config names the topics and bounds the work per transaction.
type Config struct {
	InputTopic  string
	OutputTopic string
	DLQTopic    string
	Group       string
	// TransactionalID must be unique per running replica and stable
	// across its restarts.
	TransactionalID string
	// MaxPollRecords bounds the records of one transaction.
	MaxPollRecords int
	// Workers is the number of goroutines transforming one batch
	// (0: GOMAXPROCS-1, at least 1: the producer compresses on a
	// goroutine of its own, one per broker, which needs a core too).
	Workers int
	// EndTimeout bounds one transaction from its first produce to its
	// end (transform, flush, commit), also when shutting down.
	EndTimeout time.Duration
	// RetryBackoff is the pause after an aborted transaction.
	RetryBackoff time.Duration
	// MaxConsecutiveAborts makes Run fail after this many aborted
	// transactions in a row that were not caused by rebalances.
	MaxConsecutiveAborts int
}

// Pipeline is the consume-transform-produce loop. Run it once.
type Pipeline struct {
	cfg  Config
	sess *kgo.GroupTransactSession
	// process is proc.Process and recycle proc.Done; benchmarks swap in
	// a pass-through (and a recycle that does nothing).
	process func(*kgo.Record) (Output, error)
	recycle func([]byte)
	logger  *slog.Logger
	m       metrics
	now     func() time.Time
}

type metrics struct {
	in, out     prometheus.Counter
	dlq         *contract.DLQCounter
	committed   prometheus.Counter
	aborted     prometheus.Counter
	txnDuration prometheus.Histogram
	batchSize   prometheus.Histogram
	unmapped    *unmappedCounter
}

func newMetrics(reg prometheus.Registerer, logger *slog.Logger) (metrics, error) {
	txns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "auditpipe", Subsystem: "enricher", Name: "transactions_total",
		Help: "Kafka transactions ended, by result (committed, aborted).",
	}, []string{"result"})
	m := metrics{
		in: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "events_in_total",
			Help: "Raw records consumed (counted again when an aborted transaction is retried).",
		}),
		out: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "events_out_total",
			Help: "Enriched records in committed transactions.",
		}),
		committed: txns.WithLabelValues("committed"),
		aborted:   txns.WithLabelValues("aborted"),
		txnDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "transaction_duration_seconds",
			Help:    "Time from beginning a transaction to its end (transform, produce, commit).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "auditpipe", Subsystem: "enricher", Name: "transaction_records",
			Help:    "Records consumed per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
	}
	// Dead letters are counted once their transaction committed.
	dlq, err := contract.NewDLQCounter(reg, contract.StageEnricher, append(normalize.Reasons(), ReasonInvalidRecord, ReasonEncoding, ReasonOutputTooLarge)...)
	if err != nil {
		return metrics{}, err
	}
	m.dlq = dlq
	if m.unmapped, err = newUnmappedCounter(reg, logger); err != nil {
		return metrics{}, err
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.in, m.out, txns, m.txnDuration, m.batchSize} {
			if err := reg.Register(c); err != nil {
				return metrics{}, fmt.Errorf("registering pipeline metrics: %w", err)
			}
		}
	}
	return m, nil
}

// New creates the transactional group session from base (the cluster
// connection options) and cfg. It does not contact the brokers. reg may be
// nil.
func New(cfg Config, base []kgo.Opt, proc *Processor, logger *slog.Logger, reg prometheus.Registerer) (*Pipeline, error) {
	var errs []error
	for _, s := range []struct{ name, v string }{{"input topic", cfg.InputTopic}, {"output topic", cfg.OutputTopic},
		{"dlq topic", cfg.DLQTopic}, {"group", cfg.Group}, {"transactional id", cfg.TransactionalID}} {
		if s.v == "" {
			errs = append(errs, fmt.Errorf("%s: must not be empty", s.name))
		}
	}
	if cfg.MaxPollRecords < 1 {
		errs = append(errs, errors.New("max poll records: must be at least 1"))
	}
	if cfg.EndTimeout <= 0 {
		errs = append(errs, errors.New("end timeout: must be positive"))
	}
	if proc == nil || proc.Encode == nil {
		errs = append(errs, errors.New("processor: must have an encoder"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("creating pipeline: %w", err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	if cfg.MaxConsecutiveAborts <= 0 {
		cfg.MaxConsecutiveAborts = 10
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, logger)
	if err != nil {
		return nil, err
	}
	opts := append(append([]kgo.Opt(nil), base...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.InputTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID(cfg.TransactionalID),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating transactional session: %w", err)
	}
	return &Pipeline{cfg: cfg, sess: sess, process: proc.Process, recycle: proc.Done, logger: logger, m: m, now: time.Now}, nil
}

// Client returns the session's client (for readiness pings).
func (p *Pipeline) Client() *kgo.Client { return p.sess.Client() }

// Run consumes until ctx is done. The transaction open when ctx ends is
// finished (committed, or aborted if that fails) within EndTimeout; then
// the session leaves the group and Run returns nil. It returns an error
// when a transaction cannot be ended (the transactional id is fenced or
// failed) or too many transactions abort in a row; the caller should exit
// and restart. Run closes the session in every case.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.sess.Close()
	aborts := 0
	for {
		fs := p.sess.PollRecords(ctx, p.cfg.MaxPollRecords)
		if ctx.Err() != nil && fs.NumRecords() == 0 {
			return nil
		}
		fs.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
				p.logger.Warn("fetching", slog.String("topic", topic), slog.Int("partition", int(part)), slog.Any("error", err))
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		committed, err := p.transact(recs)
		if err != nil {
			return err
		}
		if committed {
			aborts = 0
		} else {
			aborts++
			if aborts >= p.cfg.MaxConsecutiveAborts {
				return fmt.Errorf("ending transactions: %d aborted in a row", aborts)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(p.cfg.RetryBackoff):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

type result struct {
	value    []byte
	unmapped string // Output.Unmapped
	reason   string
	err      error
}

// chunkSize is the number of records a worker transforms at a time.
const chunkSize = 128

// transform processes recs on up to Workers goroutines and calls emit for
// each record in order, as soon as the record's chunk is done, so that
// producing overlaps transforming. emit runs on the calling goroutine.
func (p *Pipeline) transform(recs []*kgo.Record, emit func(i int, res result)) {
	out := make([]result, len(recs))
	do := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o, err := p.process(recs[i])
			if err != nil {
				reason := normalize.ReasonOf(err)
				if reason == "" {
					reason = ReasonEncoding
				}
				out[i] = result{reason: reason, err: err}
				continue
			}
			out[i] = result{value: o.Value, unmapped: o.Unmapped}
		}
	}
	chunks := (len(recs) + chunkSize - 1) / chunkSize
	// One worker still runs beside this goroutine, so that producing (and
	// the client's compression) overlaps transforming.
	if chunks <= 1 {
		do(0, len(recs))
		for i := range out {
			emit(i, out[i])
		}
		return
	}
	done := make([]chan struct{}, chunks)
	jobs := make(chan int, chunks)
	for c := range chunks {
		done[c] = make(chan struct{})
		jobs <- c
	}
	close(jobs)
	var wg sync.WaitGroup
	for range min(p.cfg.Workers, chunks) {
		wg.Go(func() {
			for c := range jobs {
				do(c*chunkSize, min((c+1)*chunkSize, len(recs)))
				close(done[c])
			}
		})
	}
	for c := range chunks {
		<-done[c]
		for i := c * chunkSize; i < min((c+1)*chunkSize, len(recs)); i++ {
			emit(i, out[i])
		}
	}
	wg.Wait()
}

// end ends the open transaction, committing it (with the consumed offsets)
// when commit is kgo.TryCommit and the group still owns them. It has an
// EndTimeout of its own, apart from the one producing used up: committing
// waits for a heartbeat that confirms the membership, which takes as long
// as a rebalance in progress. When that runs out (a group join that does
// not complete), the transaction is aborted instead with a fresh
// EndTimeout, so its records are processed again and the process stays
// up; an error means the transaction could not even be aborted.
func (p *Pipeline) end(commit kgo.TransactionEndTry) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.EndTimeout)
	defer cancel()
	committed, err := p.sess.End(ctx, commit)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return committed, err
	}
	p.logger.Warn("ending the transaction timed out (is the group rebalancing?); aborting it", slog.Any("error", err))
	actx, acancel := context.WithTimeout(context.Background(), p.cfg.EndTimeout)
	defer acancel()
	if _, aerr := p.sess.End(actx, kgo.TryAbort); aerr != nil {
		return false, errors.Join(err, fmt.Errorf("aborting: %w", aerr))
	}
	return false, nil
}

// transact runs one transaction over recs. It reports whether it
// committed; an error means the session cannot continue.
func (p *Pipeline) transact(recs []*kgo.Record) (bool, error) {
	start := time.Now()
	p.m.in.Add(float64(len(recs)))
	p.m.batchSize.Observe(float64(len(recs)))
	if err := p.sess.Begin(); err != nil {
		return false, fmt.Errorf("beginning transaction: %w", err)
	}
	// The transaction ends even when Run's context is done: a shutdown
	// finishes the open transaction within EndTimeout. Records are
	// produced as their chunk is transformed.
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.EndTimeout)
	defer cancel()

	t := p.produce(ctx, recs)
	committed, err := p.end(p.endTry(ctx, t))
	p.m.txnDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		p.m.aborted.Inc()
		return false, fmt.Errorf("ending transaction: %w", err)
	}
	if !committed {
		p.m.aborted.Inc()
		p.logger.Info("transaction aborted; its records will be processed again", slog.Int("records", len(recs)))
		return false, nil
	}
	p.m.committed.Inc()
	p.countCommitted(t)
	return true, nil
}

// txnTally is what one transaction produced, counted in the metrics only
// once it commits.
type txnTally struct {
	out         int            // enriched records
	dlqByReason map[string]int // dead letters
	unmapped    map[string]int // by event type; rare, so made on first use
	// produceErr is the first failed produce, set from the promises.
	produceErr atomic.Pointer[error]
}

// produce transforms recs and produces, in the open transaction, each
// one's enriched record or dead letter as soon as its chunk is done. It
// returns without waiting for the produces: flush the client before
// reading the tally's produceErr.
func (p *Pipeline) produce(ctx context.Context, recs []*kgo.Record) *txnTally {
	t := &txnTally{dlqByReason: map[string]int{}}
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			t.produceErr.CompareAndSwap(nil, &err)
		}
	}
	// An enriched value goes back to the encoder's pool once the client
	// is done with it: its promise runs after the record was acknowledged
	// or failed for good, and the client holds no reference afterwards.
	outPromise := func(r *kgo.Record, err error) {
		promise(r, err)
		p.recycle(r.Value)
	}
	p.transform(recs, func(i int, res result) {
		r := recs[i]
		if res.err != nil {
			t.dlqByReason[res.reason]++
			p.sess.Produce(ctx, contract.DeadLetter(p.cfg.DLQTopic, r, contract.StageEnricher, res.reason, res.err.Error(), p.now()), promise)
			return
		}
		t.out++
		if res.unmapped != "" {
			if t.unmapped == nil {
				t.unmapped = map[string]int{}
			}
			t.unmapped[res.unmapped]++
		}
		p.sess.Produce(ctx, &kgo.Record{Topic: p.cfg.OutputTopic, Key: r.Key, Value: res.value}, outPromise)
	})
	return t
}

// endTry flushes the transaction's records and returns how to end it:
// kgo.TryCommit, or kgo.TryAbort (logged) when the flush or a produce
// failed.
func (p *Pipeline) endTry(ctx context.Context, t *txnTally) kgo.TransactionEndTry {
	commit := kgo.TryCommit
	if err := p.sess.Client().Flush(ctx); err != nil {
		commit = kgo.TryAbort
		p.logger.Warn("flushing transaction", slog.Any("error", err))
	}
	if perr := t.produceErr.Load(); perr != nil {
		commit = kgo.TryAbort
		p.logger.Warn("producing in transaction; aborting it", slog.Any("error", *perr))
	}
	return commit
}

// countCommitted adds a committed transaction's records to the metrics and
// logs its dead letters by reason.
func (p *Pipeline) countCommitted(t *txnTally) {
	p.m.out.Add(float64(t.out))
	for typ, n := range t.unmapped {
		p.m.unmapped.add(typ, n)
	}
	for reason, n := range t.dlqByReason {
		p.m.dlq.Add(reason, n)
		p.logger.Warn("dead-lettered records", slog.String("reason", reason), slog.Int("records", n))
	}
}
