package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrGroupActive is returned when the group still has members: stop every
// enricher replica first, or they would overwrite the reset.
var ErrGroupActive = errors.New("consumer group has active members")

// Move is one partition's committed offset before and after the reset.
type Move struct {
	Partition int32
	From      int64 // -1 when the group had no commit
	To        int64
}

// Reset sets group's committed offsets on topic to the first offset of
// each partition whose record timestamp is at or after since (the end of
// the partition when there is none). It refuses with ErrGroupActive while
// the group has members. With dryRun it only computes the moves. It
// blocks on admin requests; bound it with ctx.
func Reset(ctx context.Context, adm *kadm.Client, group, topic string, since time.Time, dryRun bool) ([]Move, error) {
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describing group %q: %w", group, err)
	}
	if g, ok := groups[group]; ok && !errors.Is(g.Err, kerr.GroupIDNotFound) { // a new group has no members
		if g.Err != nil {
			return nil, fmt.Errorf("describing group %q: %w", group, g.Err)
		}
		if len(g.Members) > 0 {
			return nil, fmt.Errorf("%w: %q has %d (state %s)", ErrGroupActive, group, len(g.Members), g.State)
		}
	}
	listed, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %q after %s: %w", topic, since.Format(time.RFC3339), err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("listing offsets of %q after %s: %w", topic, since.Format(time.RFC3339), err)
	}
	if _, ok := listed[topic]; !ok || len(listed[topic]) == 0 {
		return nil, fmt.Errorf("listing offsets of %q: topic has no partitions", topic)
	}
	current, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		current, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching committed offsets of %q: %w", group, err)
	}
	var moves []Move
	to := listed.Offsets()
	for _, o := range to.Sorted() {
		from := int64(-1)
		if c, ok := current.Lookup(topic, o.Partition); ok && c.Err == nil {
			from = c.At
		}
		moves = append(moves, Move{Partition: o.Partition, From: from, To: o.At})
	}
	if dryRun {
		return moves, nil
	}
	if err := adm.CommitAllOffsets(ctx, group, to); err != nil {
		return nil, fmt.Errorf("committing offsets of %q: %w", group, err)
	}
	return moves, nil
}
