package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Membership says how one replica takes part in a consumer group. Services
// embed it (koanf ",squash") next to their group name, so its keys sit
// beside `group`: instance_id, session_timeout, rebalance_timeout.
type Membership struct {
	// InstanceID, when set, makes the replica a static member (KIP-345):
	// after a crash or restart it rejoins under the same id, takes its
	// old partitions back at once and the group does not rebalance.
	// It must be unique among the group's live replicas and stable
	// across the restarts of one replica: the pod name of a StatefulSet,
	// or a name per process on one host. Two live replicas with the same
	// id fence each other. Empty: dynamic membership, where a crashed
	// replica's partitions wait for its session timeout and every
	// restart rebalances the group.
	InstanceID string `koanf:"instance_id"`
	// SessionTimeout is how long the group waits for a silent replica
	// (crashed, paused, partitioned) before it hands the replica's
	// partitions to the others. A static member that restarts within it
	// resumes without a rebalance. A static replica that stops for good
	// (scale-down) leaves its partitions idle this long.
	SessionTimeout time.Duration `koanf:"session_timeout"`
	// RebalanceTimeout bounds how long a rebalance waits for every live
	// member to rejoin, and so how long a member may take to hand back
	// what it is asked to revoke.
	RebalanceTimeout time.Duration `koanf:"rebalance_timeout"`
}

// DefaultMembership returns dynamic membership with a 30 s session timeout
// and a 60 s rebalance timeout.
func DefaultMembership() Membership {
	return Membership{SessionTimeout: 30 * time.Second, RebalanceTimeout: time.Minute}
}

// Validate reports every problem in m. Brokers also bound the session
// timeout (group.min.session.timeout.ms, 6 s by default on Apache Kafka,
// and group.max.session.timeout.ms, 30 min) and refuse a join outside it.
func (m Membership) Validate() error {
	var errs []error
	if m.SessionTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("session_timeout: %s is too short (at least 100ms; brokers usually require 6s or more)", m.SessionTimeout))
	}
	if m.RebalanceTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("rebalance_timeout: %s is too short (at least 100ms)", m.RebalanceTimeout))
	}
	if len(m.InstanceID) > 249 {
		errs = append(errs, errors.New("instance_id: at most 249 characters"))
	}
	return errors.Join(errs...)
}

// HeartbeatInterval is a third of the session timeout, at most 3 s (the
// client default), so a member misses at least two heartbeats before the
// group gives up on it.
func (m Membership) HeartbeatInterval() time.Duration {
	return min(3*time.Second, m.SessionTimeout/3)
}

// Options returns the group options for m: session, rebalance and
// heartbeat timing, and the instance id when set. Add them after the base
// Options and kgo.ConsumerGroup.
func (m Membership) Options() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SessionTimeout(m.SessionTimeout),
		kgo.RebalanceTimeout(m.RebalanceTimeout),
		kgo.HeartbeatInterval(m.HeartbeatInterval()),
	}
	if m.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(m.InstanceID))
	}
	return opts
}

// Leave removes this replica's static membership from group once its
// consumer client is closed, so that a graceful stop (scale-down, a
// replay that needs an empty group, a rolling restart) hands its
// partitions over at once instead of after the session timeout; a crash
// does not leave, and a restart within the session timeout takes the place
// back without a rebalance. It does nothing for dynamic members (their
// client leaves on Close) and ignores an instance the group no longer
// knows. It connects with c and gives up after 5 s.
func (m Membership) Leave(c Config, group string) error {
	if m.InstanceID == "" {
		return nil
	}
	base, err := c.Options(nil, nil, "leave")
	if err != nil {
		return fmt.Errorf("leaving group %s: %w", group, err)
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return fmt.Errorf("leaving group %s: %w", group, err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs(m.InstanceID).Reason("graceful shutdown"))
	if err == nil {
		err = resps.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("leaving group %s as static member %s (its partitions move on after session_timeout): %w", group, m.InstanceID, err)
	}
	return nil
}
