package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/auditpipe/auditpipe/loader/internal/batch"
	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// intentPrefix starts the commit metadata that announces a flush: the
// committed offset is the first offset of the range and the metadata
// names its last offset.
const intentPrefix = "auditpipe-loader/intent/v1:"

func intentMetadata(last int64) string { return intentPrefix + strconv.FormatInt(last, 10) }

// parseIntent returns the last offset announced by commit metadata.
func parseIntent(meta string) (int64, bool) {
	rest, ok := strings.CutPrefix(meta, intentPrefix)
	if !ok {
		return 0, false
	}
	last, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || last < 0 {
		return 0, false
	}
	return last, true
}

// Token returns the insert_deduplication_token of the rows of tp from
// offset first to last (count rows): identical for an identical retry,
// distinct for any other range.
func Token(tp batch.TopicPartition, first, last int64, count int) string {
	return fmt.Sprintf("%s/%d/%d-%d/%d", tp.Topic, tp.Partition, first, last, count)
}

type commitOffset struct {
	at    int64
	epoch int32
	meta  string
}

// flush flushes the ready parts (of only, when non-nil):
//
//  1. it commits, for each part not yet announced, the part's first
//     offset with metadata naming its last offset (the intent), and pins
//     the part's range in the buffer;
//  2. it inserts each part's rows with a token derived from the range,
//     bisecting ranges ClickHouse rejects for their data;
//  3. it produces the dead letters of the part and waits for them;
//  4. it commits the offset after each flushed part, clearing the intent,
//     and removes the part from the buffer.
//
// A crash or failure at any step leaves the part's intent committed, so
// whoever retries inserts exactly the same range with the same token and
// ClickHouse drops the repeat. Parts that fail stay buffered for a retry.
func (p *Pipeline) flush(ctx context.Context, only map[batch.TopicPartition]bool) error {
	parts := p.buf.Parts(false, only)
	if len(parts) == 0 {
		return nil
	}
	if err := p.decodePending(ctx, parts); err != nil {
		return err
	}
	if err := p.announce(ctx, parts); err != nil {
		return err
	}
	flushed, ferr := p.flushParts(ctx, parts)
	if len(flushed) == 0 {
		return ferr
	}
	if err := p.commit(ctx, "done", doneOffsets(flushed)); err != nil {
		return errors.Join(err, ferr)
	}
	p.release(flushed)
	return ferr
}

// decodePending decodes the parts' records whose decoding failed
// transiently before; the first failure stops it.
func (p *Pipeline) decodePending(ctx context.Context, parts []*batch.Part[*entry]) error {
	for _, part := range parts {
		for i := range part.Items {
			it := &part.Items[i]
			if it.Value.state == statePending {
				if err := p.decode(ctx, it.Record, it.Value); err != nil {
					return fmt.Errorf("decoding %s offset %d: %w", part.TopicPartition, it.Record.Offset, err)
				}
			}
		}
	}
	return nil
}

// announce commits the intent of each part not announced yet (its first
// offset, with metadata naming its last), then pins those parts' ranges
// in the buffer and marks them Bounded. When the commit fails nothing is
// pinned.
func (p *Pipeline) announce(ctx context.Context, parts []*batch.Part[*entry]) error {
	intents := map[batch.TopicPartition]commitOffset{}
	for _, part := range parts {
		if !part.Bounded {
			first := part.Items[0].Record
			intents[part.TopicPartition] = commitOffset{at: first.Offset, epoch: first.LeaderEpoch, meta: intentMetadata(part.Last())}
		}
	}
	if err := p.commit(ctx, "intent", intents); err != nil {
		return err
	}
	for _, part := range parts {
		if !part.Bounded {
			p.buf.SetBoundary(part.TopicPartition, part.Last())
			part.Bounded = true
		}
	}
	return nil
}

// flushParts runs flushPart on the parts (one per partition)
// concurrently, up to InsertConcurrency at a time, and waits for all. It
// returns the parts that flushed, in order, and the others' errors,
// joined.
func (p *Pipeline) flushParts(ctx context.Context, parts []*batch.Part[*entry]) ([]*batch.Part[*entry], error) {
	errs := make([]error, len(parts))
	var g errgroup.Group
	g.SetLimit(p.cfg.InsertConcurrency)
	for i, part := range parts {
		g.Go(func() error {
			errs[i] = p.flushPart(ctx, part)
			return nil
		})
	}
	_ = g.Wait()
	var flushed []*batch.Part[*entry]
	for i, part := range parts {
		if errs[i] == nil {
			flushed = append(flushed, part)
		}
	}
	return flushed, errors.Join(errs...)
}

// doneOffsets returns the offsets that mark the flushed parts done: each
// part's last offset plus one, without metadata (clearing the intent).
func doneOffsets(flushed []*batch.Part[*entry]) map[batch.TopicPartition]commitOffset {
	done := make(map[batch.TopicPartition]commitOffset, len(flushed))
	for _, part := range flushed {
		last := part.Items[len(part.Items)-1].Record
		done[part.TopicPartition] = commitOffset{at: last.Offset + 1, epoch: last.LeaderEpoch}
	}
	return done
}

// release removes the flushed parts, whose done offsets are committed,
// from the buffer, observing their records' delays and the batch's size.
func (p *Pipeline) release(flushed []*batch.Part[*entry]) {
	rows, bytes := 0, 0
	for _, part := range flushed {
		rows += len(part.Items)
		for _, it := range part.Items {
			bytes += batch.RecordSize(it.Record)
		}
	}
	now := p.now()
	var oldest time.Duration
	for _, part := range flushed {
		for _, it := range part.Items {
			d := now.Sub(it.Record.Timestamp)
			p.m.recordDelay.Observe(max(0, d).Seconds())
			if it.Value.state == stateRow {
				p.m.eventDelay.Observe(max(0, now.Sub(it.Value.row.EventTime)).Seconds())
			}
			oldest = max(oldest, d)
		}
		p.buf.Remove(part)
	}
	p.m.batchRows.Observe(float64(rows))
	p.m.batchBytes.Observe(float64(bytes))
	p.logger.Debug("flushed", slog.Int("parts", len(flushed)), slog.Int("rows", rows), slog.Int("bytes", bytes), slog.Duration("oldest_record_delay", oldest))
}

// rejection is a row ClickHouse refused.
type rejection struct {
	index int // into the part's items
	err   error
}

// flushPart inserts the part's rows and dead-letters what cannot be loaded.
func (p *Pipeline) flushPart(ctx context.Context, part *batch.Part[*entry]) error {
	rows := make([]*schema.AuditLog, 0, len(part.Items))
	idx := make([]int, 0, len(part.Items))
	for i := range part.Items {
		if part.Items[i].Value.state == stateRow {
			rows = append(rows, &part.Items[i].Value.row)
			idx = append(idx, i)
		}
	}
	var rejected []rejection
	if len(rows) > 0 {
		var err error
		rejected, err = p.insert(ctx, part, rows, idx)
		if err != nil {
			return err
		}
	}
	var dead []*kgo.Record
	var reasons []string
	for i := range part.Items {
		if e := part.Items[i].Value; e.state == stateDead {
			dead = append(dead, p.deadLetter(part.Items[i].Record, e.reason, e.err))
			reasons = append(reasons, e.reason)
		}
	}
	for _, r := range rejected {
		dead = append(dead, p.deadLetter(part.Items[r.index].Record, ReasonClickHouseRejected, r.err.Error()))
		reasons = append(reasons, ReasonClickHouseRejected)
	}
	if len(dead) == 0 {
		return nil
	}
	if err := p.cl.ProduceSync(ctx, dead...).FirstErr(); err != nil {
		return fmt.Errorf("producing %d dead letters to %s: %w", len(dead), p.cfg.DLQTopic, err)
	}
	for _, r := range reasons {
		p.m.dlq.Add(r, 1)
	}
	p.logger.Warn("records sent to the dead-letter topic", slog.String("partition", part.TopicPartition.String()), slog.Int("count", len(dead)), slog.String("first_reason", reasons[0]))
	return nil
}

// insert inserts rows (the part's items at idx) in one INSERT; when
// ClickHouse rejects them for their data it bisects the range until the
// offending rows are isolated and returns those. Every INSERT's token is
// derived from its own offset range, so the same split repeats on a retry.
func (p *Pipeline) insert(ctx context.Context, part *batch.Part[*entry], rows []*schema.AuditLog, idx []int) ([]rejection, error) {
	first := part.Items[idx[0]].Record.Offset
	last := part.Items[idx[len(idx)-1]].Record.Offset
	start := time.Now()
	err := p.ins.Insert(ctx, Token(part.TopicPartition, first, last, len(rows)), rows)
	p.m.insertSeconds.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		p.m.inserts.WithLabelValues("ok").Inc()
		p.m.rowsInserted.Add(float64(len(rows)))
		bytes := 0
		for _, i := range idx {
			bytes += batch.RecordSize(part.Items[i].Record)
		}
		p.m.bytesInserted.Add(float64(bytes))
		return nil, nil
	case !errors.Is(err, chwriter.ErrRejected):
		p.m.inserts.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("inserting %s offsets %d-%d: %w", part.TopicPartition, first, last, err)
	}
	p.m.inserts.WithLabelValues("rejected").Inc()
	if len(rows) == 1 {
		return []rejection{{index: idx[0], err: err}}, nil
	}
	mid := len(rows) / 2
	left, err := p.insert(ctx, part, rows[:mid], idx[:mid])
	if err != nil {
		return nil, err
	}
	right, err := p.insert(ctx, part, rows[mid:], idx[mid:])
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// deadLetter builds the DLQ record of r: its key and value unchanged, its
// headers plus the dlq_* ones.
func (p *Pipeline) deadLetter(r *kgo.Record, reason, msg string) *kgo.Record {
	return contract.DeadLetter(p.cfg.DLQTopic, r, contract.StageLoader, reason, msg, p.now())
}

// commit commits offs synchronously, each partition with its metadata.
func (p *Pipeline) commit(ctx context.Context, kind string, offs map[batch.TopicPartition]commitOffset) error {
	if len(offs) == 0 {
		return nil
	}
	m := map[string]map[int32]kgo.EpochOffset{}
	for tp, o := range offs {
		if m[tp.Topic] == nil {
			m[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		m[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: o.epoch, Offset: o.at}
	}
	cctx := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				pp := &t.Partitions[j]
				if o, ok := offs[batch.TopicPartition{Topic: t.Topic, Partition: pp.Partition}]; ok {
					meta := o.meta
					pp.Metadata = &meta
				}
			}
		}
		return nil
	})
	var cerr error
	p.cl.CommitOffsetsSync(cctx, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, pp := range t.Partitions {
				if err := kerr.ErrorForCode(pp.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, pp.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		p.m.commits.WithLabelValues(kind, "error").Inc()
		return fmt.Errorf("committing %s offsets: %w", kind, cerr)
	}
	p.m.commits.WithLabelValues(kind, "ok").Inc()
	return nil
}
