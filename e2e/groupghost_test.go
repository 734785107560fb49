package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/auditpipe/auditpipe/e2e/kafkabroker"
)

// The group-coordinator behaviour behind the crash-loop stall, reduced to
// raw group requests (docs/kfake-group-stall.md explains it): a member
// killed while its JoinGroup is parked is still counted as joining; when
// the rebalance completes, its JoinGroup response cannot be delivered. In
// Apache Kafka the coordinator then expires it after its session timeout
// (it schedules a session expiry for every member when the join
// completes), so its partitions move on. kfake only arms a member's
// session timer after a reply it could deliver, and the leader's
// SyncGroup clears the pending-sync deadline, so the dead member keeps its
// partitions until the next rebalance, which nobody starts: a permanent
// stall. The kfake subtest pins that behaviour (when it fails after a kfake
// upgrade, the bug is fixed upstream and the workaround can be revisited);
// it also shows the workaround's remedy: a rebalance requested by the
// leader (kgo.Client.ForceRebalance) removes the dead member.
func TestGroupGhostMember(t *testing.T) {
	// The rebalance timeout is below the session timeout: kfake, unlike
	// Apache Kafka, also expires a live member whose JoinGroup waits at
	// the coordinator longer than its session timeout.
	const (
		session   = 6 * time.Second
		rebalance = 4 * time.Second
	)
	t.Run("kfake keeps the dead member until a rebalance", func(t *testing.T) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "ghost"))
		require.NoError(t, err)
		defer c.Close()
		// Whether kfake manages to hand the dead member its JoinGroup
		// response (and so arms its session timer) is a coin toss between
		// a buffered channel and the closed connection; with twelve dead
		// members at least one stays (all twelve expire with p = 1/4096).
		const tries = 12
		type outcome struct {
			stayed          bool
			members, assign []string
			ghostPartitions []int32
			removedByRejoin bool
		}
		outcomes := make([]outcome, tries)
		var wg sync.WaitGroup
		for i := range outcomes {
			g := newGhostScenario(t, fmt.Sprintf("ghost-group-%d", i), c.ListenAddrs(), session, rebalance)
			wg.Go(func() {
				g.run()
				if g.keepAlive(3*session) != nil {
					return // kfake delivered the response and expired the member
				}
				o := &outcomes[i]
				o.stayed = true
				o.members = g.members()
				o.assign = []string{g.leader, g.ghost}
				o.ghostPartitions = g.assigned(g.ghost)
				g.rejoin() // what ForceRebalance makes the leader do
				o.removedByRejoin = len(g.members()) == 1
			})
		}
		wg.Wait()
		n := 0
		for _, o := range outcomes {
			if !o.stayed {
				continue
			}
			n++
			assert.Equal(t, o.assign, o.members, "kfake: the dead member is still in the group after 3 session timeouts")
			assert.Equal(t, []int32{1}, o.ghostPartitions, "and still owns its partition")
			assert.True(t, o.removedByRejoin, "a rebalance started by the leader removes the dead member")
		}
		t.Logf("%d of %d dead members outlived their session timeout", n, tries)
		require.Positive(t, n)
	})
	t.Run("Apache Kafka expires the dead member", func(t *testing.T) {
		broker := kafkabroker.StartTest(t)
		adm := kadm.NewClient(newClient(t, broker.Addr()))
		_, err := adm.CreateTopic(context.Background(), 2, 1, nil, "ghost")
		require.NoError(t, err)
		g := newGhostScenario(t, "ghost-group", []string{broker.Addr()}, session, rebalance)
		g.run()
		require.Eventually(t, func() bool {
			g.heartbeat() // the live leader keeps its own session
			ms := g.members()
			return len(ms) == 1 && ms[0] == g.leader || len(ms) == 0
		}, 3*session, 500*time.Millisecond, "Apache Kafka removes the dead member after its session timeout")
	})
}

func newClient(t *testing.T, addrs ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// ghostScenario drives two raw group members: a leader that stays alive
// and a member that dies with its JoinGroup parked.
type ghostScenario struct {
	t                  *testing.T
	addrs              []string
	session, rebalance time.Duration
	leaderCl           *kgo.Client
	adm                *kadm.Client
	group              string
	leader, ghost      string
	generation         int32
}

func newGhostScenario(t *testing.T, group string, addrs []string, session, rebalance time.Duration) *ghostScenario {
	cl := newClient(t, addrs...)
	return &ghostScenario{t: t, group: group, addrs: addrs, session: session, rebalance: rebalance, leaderCl: cl, adm: kadm.NewClient(cl)}
}

func (g *ghostScenario) joinReq(member string) *kmsg.JoinGroupRequest {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"ghost"}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = g.group
	req.SessionTimeoutMillis = int32(g.session.Milliseconds())
	req.RebalanceTimeoutMillis = int32(g.rebalance.Milliseconds())
	req.ProtocolType = "consumer"
	req.MemberID = member
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	return req
}

// join runs the two-step join (MEMBER_ID_REQUIRED, then the real join).
func (g *ghostScenario) join(ctx context.Context, cl *kgo.Client, member string) (*kmsg.JoinGroupResponse, error) {
	resp, err := g.joinReq(member).RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.MemberIDRequired) {
		return g.joinReq(resp.MemberID).RequestWith(ctx, cl)
	}
	return resp, kerr.ErrorForCode(resp.ErrorCode)
}

// sync sends the leader's SyncGroup with assign (member -> partitions).
func (g *ghostScenario) sync(assign map[string][]int32) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = g.group, g.leader, g.generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for m, ps := range assign {
		a := kmsg.NewConsumerMemberAssignment()
		tp := kmsg.NewConsumerMemberAssignmentTopic()
		tp.Topic, tp.Partitions = "ghost", ps
		a.Topics = append(a.Topics, tp)
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m, a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	resp, err := req.RequestWith(context.Background(), g.leaderCl)
	require.NoError(g.t, err)
	require.NoError(g.t, kerr.ErrorForCode(resp.ErrorCode), "sync")
}

func (g *ghostScenario) heartbeat() error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = g.group, g.leader, g.generation
	resp, err := req.RequestWith(context.Background(), g.leaderCl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// run builds the ghost: the leader joins alone and syncs; a second member
// joins (the group starts preparing a rebalance and parks that join) and
// dies; the leader rejoins, the rebalance completes with the dead member,
// and the leader assigns it partition 1.
func (g *ghostScenario) run() {
	t := g.t
	resp, err := g.join(context.Background(), g.leaderCl, "")
	require.NoError(t, err)
	g.leader, g.generation = resp.MemberID, resp.Generation
	g.sync(map[string][]int32{g.leader: {0, 1}})

	ghostCl, err := kgo.NewClient(kgo.SeedBrokers(g.addrs...))
	require.NoError(t, err)
	parked := make(chan string, 1)
	go func() {
		first, err := g.joinReq("").RequestWith(context.Background(), ghostCl)
		if err != nil {
			parked <- ""
			return
		}
		parked <- first.MemberID
		_, _ = g.joinReq(first.MemberID).RequestWith(context.Background(), ghostCl) // parks, then dies
	}()
	g.ghost = <-parked
	require.NotEmpty(t, g.ghost)
	require.Eventually(t, func() bool { return errors.Is(g.heartbeat(), kerr.RebalanceInProgress) }, 10*time.Second, 50*time.Millisecond,
		"the second member's join starts a rebalance")
	time.Sleep(200 * time.Millisecond) // its JoinGroup is parked at the coordinator
	ghostCl.Close()                    // the member dies: no LeaveGroup
	time.Sleep(200 * time.Millisecond) // the coordinator sees the connection close

	g.rejoin()
	g.sync(map[string][]int32{g.leader: {0}, g.ghost: {1}})
	require.NoError(t, g.heartbeat(), "the group is stable")
}

// keepAlive heartbeats as the leader for d; it returns the first failed
// heartbeat (REBALANCE_IN_PROGRESS once the dead member expired).
func (g *ghostScenario) keepAlive(d time.Duration) error {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		if err := g.heartbeat(); err != nil {
			return err
		}
	}
	return nil
}

// rejoin makes the leader join again, which starts a rebalance; it returns
// once the rebalance completed (after the rebalance timeout when a member
// does not rejoin). It may run on another goroutine than the test's.
func (g *ghostScenario) rejoin() {
	resp, err := g.joinReq(g.leader).RequestWith(context.Background(), g.leaderCl)
	if err == nil && resp.ErrorCode == 0 {
		g.generation = resp.Generation
	}
}

// members returns the group's member ids, the leader first.
func (g *ghostScenario) members() []string {
	gs, err := g.adm.DescribeGroups(context.Background(), g.group)
	require.NoError(g.t, err)
	var out []string
	for _, m := range gs[g.group].Members {
		if m.MemberID == g.leader {
			out = append([]string{m.MemberID}, out...)
		} else {
			out = append(out, m.MemberID)
		}
	}
	return out
}

// assigned returns the partitions of member.
func (g *ghostScenario) assigned(member string) []int32 {
	gs, err := g.adm.DescribeGroups(context.Background(), g.group)
	require.NoError(g.t, err)
	for _, m := range gs[g.group].Members {
		if c, ok := m.Assigned.AsConsumer(); ok && m.MemberID == member {
			for _, tp := range c.Topics {
				return tp.Partitions
			}
		}
	}
	return nil
}
