package kafka_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

func TestMembershipValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*kafka.Membership)
		want string
	}{
		{"defaults", func(*kafka.Membership) {}, ""},
		{"static", func(m *kafka.Membership) { m.InstanceID = "loader-0" }, ""},
		{"session too short", func(m *kafka.Membership) { m.SessionTimeout = time.Millisecond }, "session_timeout: 1ms is too short"},
		{"rebalance too short", func(m *kafka.Membership) { m.RebalanceTimeout = 0 }, "rebalance_timeout: 0s is too short"},
		{"instance id too long", func(m *kafka.Membership) { m.InstanceID = strings.Repeat("x", 250) }, "instance_id: at most 249 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := kafka.DefaultMembership()
			tc.edit(&m)
			err := m.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMembershipHeartbeatInterval(t *testing.T) {
	for session, want := range map[time.Duration]time.Duration{
		30 * time.Second: 3 * time.Second,
		6 * time.Second:  2 * time.Second,
		time.Second:      time.Second / 3,
	} {
		m := kafka.Membership{SessionTimeout: session}
		assert.Equal(t, want, m.HeartbeatInterval(), session)
	}
}

// A static member that crashes (its client vanishes without leaving) is
// replaced by its restart at once: the group stays stable and the restart
// owns the partitions. A static member that stops gracefully and Leaves
// empties the group at once.
func TestStaticMemberRestartAndLeave(t *testing.T) {
	const topic, group = "static", "static-group"
	cl := kafkatest.NewCluster(t, kfake.SeedTopics(2, topic))
	m := kafka.DefaultMembership()
	m.InstanceID = "replica-0"
	m.SessionTimeout = 6 * time.Second
	join := func() *kgo.Client {
		c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cl.Addrs()...), kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(topic), kgo.MetadataMinAge(kafkatest.MetadataMinAge)}, m.Options()...)...)
		require.NoError(t, err)
		return c
	}
	adm := kadm.NewClient(cl.Client(t))
	members := func() []string {
		gs, err := adm.DescribeGroups(context.Background(), group)
		require.NoError(t, err)
		var ids []string
		for _, mm := range gs[group].Members {
			if mm.InstanceID != nil {
				ids = append(ids, *mm.InstanceID)
			}
		}
		return ids
	}
	owned := func(c *kgo.Client) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		c.PollFetches(ctx)
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g := gs[group]
		return g.State == "Stable" && len(g.AssignedPartitions()[topic]) == 2
	}

	first := join()
	require.Eventually(t, func() bool { return owned(first) }, 10*time.Second, 10*time.Millisecond)
	// A crash: the client stops talking without leaving (Close does not
	// leave for a static member).
	first.Close()
	start := time.Now()
	second := join()
	require.Eventually(t, func() bool { return owned(second) }, 10*time.Second, 10*time.Millisecond)
	assert.Less(t, time.Since(start), m.SessionTimeout, "the restart took the place back before the session timeout")
	assert.Equal(t, []string{"replica-0"}, members())

	second.Close()
	cfg := cl.Config()
	require.NoError(t, m.Leave(cfg, group))
	assert.Empty(t, members(), "Leave empties the group at once")
	require.NoError(t, m.Leave(cfg, group), "leaving twice is harmless")
	require.NoError(t, kafka.DefaultMembership().Leave(cfg, group), "a dynamic member has nothing to leave")
}
