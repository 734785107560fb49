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
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return state.State{}, fmt.Errorf("listing state topic end offsets: %w", err)
	}
	end, ok := ends.Lookup(topic, partition)
	if !ok || end.Err != nil {
		return state.State{}, fmt.Errorf("listing end offset of %s/%d: %w", topic, partition, errors.Join(end.Err, errMissing(ok)))
	}
	target := end.Offset
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return state.State{}, fmt.Errorf("listing state topic start offsets: %w", err)
	}
	if so, ok := starts.Lookup(topic, partition); ok && so.Err == nil && so.Offset >= target {
		return state.New(sourceID), nil // empty partition
	}
	var last *kgo.Record
	seen := int64(-1)
	empty := 0
	for seen < target-1 {
		pctx, cancel := context.WithTimeout(ctx, 2*idle)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return state.State{}, ctx.Err()
		}
		got := false
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return state.State{}, fmt.Errorf("reading state partition %s/%d: %w", topic, partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got = true
			seen = max(seen, r.Offset)
			if !r.Attrs.IsControl() && string(r.Key) == sourceID {
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
		stable, err := adm.ListCommittedOffsets(ctx, topic)
		if err != nil {
			return state.State{}, fmt.Errorf("listing state topic stable offsets: %w", err)
		}
		if o, ok := stable.Lookup(topic, partition); ok && o.Err == nil && o.Offset >= target {
			// Everything below target is decided and nothing more came:
			// the tail is aborted or compacted away.
			break
		}
	}
	if last == nil || last.Value == nil {
		return state.New(sourceID), nil
	}
	st, err := codec.Decode(last.Value)
	if err != nil {
		return state.State{}, fmt.Errorf("decoding state of %q at %s/%d@%d: %w", sourceID, topic, partition, last.Offset, err)
	}
	if st.SourceID != sourceID {
		return state.State{}, fmt.Errorf("state record at %s/%d@%d is keyed %q but holds source %q", topic, partition, last.Offset, sourceID, st.SourceID)
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
