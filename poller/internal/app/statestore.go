package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/poller/internal/state"
)

// loadState reads the last committed state record of sourceID from its
// partition of the state topic, or state.New when there is none.
//
// Call it only after the source's transactional producer has initialised
// its producer id (which fences a previous owner and aborts its open
// transaction). The partition is read as a read_committed consumer, with
// control records kept, up to the high watermark taken at the start: every
// record of this source below it is then decided. Reading ends when the
// last offset below that mark was seen, or, for the rare partition whose
// tail is an aborted record of another source, when the last stable offset
// has passed the mark and no record came for idlePolls polls.
func loadState(ctx context.Context, opts []kgo.Opt, topic string, partition int32, sourceID string, codec *state.Codec, idle time.Duration) (state.State, error) {
	cl, err := kgo.NewClient(slices.Concat(opts, []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(idle),
	})...)
	if err != nil {
		return state.State{}, fmt.Errorf("creating state reader: %w", err)
	}
	defer cl.Close()
	rd := stateReader{cl: cl, adm: kadm.NewClient(cl), topic: topic, partition: partition, sourceID: sourceID, idle: idle}
	target, empty, err := rd.highWatermark(ctx)
	if err != nil {
		return state.State{}, err
	}
	if empty {
		return state.New(sourceID), nil // empty partition
	}
	last, err := rd.lastRecord(ctx, target)
	if err != nil {
		return state.State{}, err
	}
	return rd.decode(codec, last)
}

// stateReader reads one source's records from its partition of the state
// topic (see loadState).
type stateReader struct {
	cl        *kgo.Client // consumes the partition, read_committed, control records kept
	adm       *kadm.Client
	topic     string
	partition int32
	sourceID  string
	idle      time.Duration // the fetch max wait; a poll waits at most twice that
}

// highWatermark returns the partition's end offset, and whether the
// partition holds no record (its start offset has reached the end).
func (rd *stateReader) highWatermark(ctx context.Context) (target int64, empty bool, err error) {
	ends, err := rd.adm.ListEndOffsets(ctx, rd.topic)
	if err != nil {
		return 0, false, fmt.Errorf("listing state topic end offsets: %w", err)
	}
	end, ok := ends.Lookup(rd.topic, rd.partition)
	if !ok || end.Err != nil {
		return 0, false, fmt.Errorf("listing end offset of %s/%d: %w", rd.topic, rd.partition, errors.Join(end.Err, errMissing(ok)))
	}
	target = end.Offset
	starts, err := rd.adm.ListStartOffsets(ctx, rd.topic)
	if err != nil {
		return 0, false, fmt.Errorf("listing state topic start offsets: %w", err)
	}
	if so, ok := starts.Lookup(rd.topic, rd.partition); ok && so.Err == nil && so.Offset >= target {
		return target, true, nil
	}
	return target, false, nil
}

// lastRecord reads the partition up to target (its high watermark) and
// returns the last data record keyed with the source id, or nil when there
// is none. It stops once offset target-1 was seen, or after idlePolls
// empty polls in a row once the last stable offset has reached target
// (the tail is aborted or compacted away).
func (rd *stateReader) lastRecord(ctx context.Context, target int64) (*kgo.Record, error) {
	var last *kgo.Record
	seen := int64(-1)
	empty := 0
	for seen < target-1 {
		fs, err := rd.poll(ctx)
		if err != nil {
			return nil, err
		}
		got := false
		fs.EachRecord(func(r *kgo.Record) {
			got = true
			seen = max(seen, r.Offset)
			if !r.Attrs.IsControl() && string(r.Key) == rd.sourceID {
				last = r
			}
		})
		if got {
			empty = 0
			continue
		}
		if empty++; empty < idlePolls {
			continue
		}
		decided, err := rd.decided(ctx, target)
		if err != nil {
			return nil, err
		}
		if decided {
			// Everything below target is decided and nothing more came:
			// the tail is aborted or compacted away.
			break
		}
	}
	return last, nil
}

// poll fetches once, waiting at most twice the idle time. It returns
// ctx's error once ctx is done, and the first fetch error other than the
// poll's own timeout.
func (rd *stateReader) poll(ctx context.Context) (kgo.Fetches, error) {
	pctx, cancel := context.WithTimeout(ctx, 2*rd.idle)
	fs := rd.cl.PollFetches(pctx)
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		return nil, fmt.Errorf("reading state partition %s/%d: %w", rd.topic, rd.partition, fe.Err)
	}
	return fs, nil
}

// decided reports whether the partition's last stable offset has reached
// target: every record below it is committed or aborted.
func (rd *stateReader) decided(ctx context.Context, target int64) (bool, error) {
	stable, err := rd.adm.ListCommittedOffsets(ctx, rd.topic)
	if err != nil {
		return false, fmt.Errorf("listing state topic stable offsets: %w", err)
	}
	o, ok := stable.Lookup(rd.topic, rd.partition)
	return ok && o.Err == nil && o.Offset >= target, nil
}

// decode returns the state held by last (state.New for none or a
// tombstone), checking that it belongs to the source.
func (rd *stateReader) decode(codec *state.Codec, last *kgo.Record) (state.State, error) {
	if last == nil || last.Value == nil {
		return state.New(rd.sourceID), nil
	}
	st, err := codec.Decode(last.Value)
	if err != nil {
		return state.State{}, fmt.Errorf("decoding state of %q at %s/%d@%d: %w", rd.sourceID, rd.topic, rd.partition, last.Offset, err)
	}
	if st.SourceID != rd.sourceID {
		return state.State{}, fmt.Errorf("state record at %s/%d@%d is keyed %q but holds source %q", rd.topic, rd.partition, last.Offset, rd.sourceID, st.SourceID)
	}
	return st, nil
}

// idlePolls is how many empty polls in a row end a read whose tail is
// invisible (see loadState).
const idlePolls = 10

func errMissing(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("partition not found")
}
