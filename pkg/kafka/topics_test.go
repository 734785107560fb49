package kafka_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

var (
	rawSpec   = kafka.TopicSpec{Name: "openai-audit-raw", Partitions: 3, ReplicationFactor: 1}
	stateSpec = kafka.TopicSpec{Name: "auditpipe-poller-state", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"cleanup_policy": "compact"}}
)

func admin(t *testing.T, cl *kgo.Client) (*kadm.Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return kadm.NewClient(cl), ctx
}

func TestEnsureTopicsCreatesAndIsIdempotent(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	adm, ctx := admin(t, cluster.Client(t))

	require.NoError(t, kafka.EnsureTopics(ctx, adm, nil, rawSpec, stateSpec))

	raw, err := kafka.DescribeTopic(ctx, adm, rawSpec.Name)
	require.NoError(t, err)
	assert.Equal(t, int32(3), raw.Partitions)
	assert.Equal(t, int16(1), raw.ReplicationFactor)
	state, err := kafka.DescribeTopic(ctx, adm, stateSpec.Name)
	require.NoError(t, err)
	assert.Equal(t, "compact", state.Configs["cleanup.policy"])

	// Again: nothing is created, nothing fails.
	creates := cluster.Kfake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.CreateTopics}, Observe: true, Count: -1})
	defer creates.Remove()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	require.NoError(t, kafka.EnsureTopics(ctx, adm, logger, rawSpec, stateSpec))
	assert.Zero(t, creates.Hits(), "no CreateTopics for existing topics")
	assert.Empty(t, logs.String(), "no drift to report")
}

func TestEnsureTopicsNotAuthorized(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	adm, ctx := admin(t, cluster.Client(t))
	cluster.Kfake().ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		creq := req.(*kmsg.CreateTopicsRequest)
		resp := creq.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range creq.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})

	err := kafka.EnsureTopics(ctx, adm, nil, rawSpec)
	require.Error(t, err)
	require.ErrorIs(t, err, kerr.TopicAuthorizationFailed)
	msg := err.Error()
	assert.Contains(t, msg, `creating topic "openai-audit-raw": not authorized`)
	assert.Contains(t, msg, "grant CREATE on the topic")
	assert.Contains(t, msg, "with 3 partitions")
	assert.Contains(t, msg, "kafka-topics.sh --create --topic openai-audit-raw --partitions 3 --replication-factor 1")
}

func TestEnsureTopicsWithACLs(t *testing.T) {
	// A principal that may describe but not create topics, as in a
	// locked-down cluster where an operator creates topics.
	cluster := kafkatest.NewCluster(t, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin"),
		kfake.User("PLAIN", "app", "app", kfake.ACL{
			Resource: kmsg.ACLResourceTypeTopic, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral,
			Operation: kmsg.ACLOperationDescribe, Allow: true,
		}))
	cfg := cluster.Config()
	cfg.SASL = kafka.SASLConfig{Mechanism: "PLAIN", Username: "app", Password: config.NewSecret("app")}
	cl, err := kafka.NewClient(cfg, nil, nil, "admin")
	require.NoError(t, err)
	defer cl.Close()
	adm, ctx := admin(t, cl)

	err = kafka.EnsureTopics(ctx, adm, nil, stateSpec)
	require.Error(t, err)
	require.ErrorIs(t, err, kerr.TopicAuthorizationFailed)
	assert.Contains(t, err.Error(), "--config cleanup.policy=compact")
}

func TestEnsureTopicsPolicyViolation(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	adm, ctx := admin(t, cluster.Client(t))
	cluster.Kfake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.CreateTopics}, Topic: rawSpec.Name, Err: kerr.PolicyViolation})

	err := kafka.EnsureTopics(ctx, adm, nil, rawSpec, stateSpec)
	require.ErrorIs(t, err, kerr.PolicyViolation)
	assert.Contains(t, err.Error(), "topic creation policy")

	// The other topic was still created.
	_, err = kafka.DescribeTopic(ctx, adm, stateSpec.Name)
	require.NoError(t, err)
}

func TestEnsureTopicsReplicationFactorTooHigh(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	adm, ctx := admin(t, cluster.Client(t))

	spec := rawSpec
	spec.ReplicationFactor = 3
	err := kafka.EnsureTopics(ctx, adm, nil, spec)
	require.ErrorIs(t, err, kerr.InvalidReplicationFactor)
	assert.Contains(t, err.Error(), "the cluster has 1 brokers; set replication_factor to at most 1")
}

func TestEnsureTopicsExistingIncompatible(t *testing.T) {
	// The state topic exists without compaction; the raw topic exists
	// with fewer partitions than asked, which is only worth a warning.
	cluster := kafkatest.NewCluster(t, kfake.SeedTopics(1, stateSpec.Name, rawSpec.Name))
	adm, ctx := admin(t, cluster.Client(t))

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	err := kafka.EnsureTopics(ctx, adm, logger, stateSpec, rawSpec)
	require.ErrorIs(t, err, kafka.ErrIncompatibleTopic)
	assert.Contains(t, err.Error(), `topic "auditpipe-poller-state" has cleanup.policy=delete, spec needs compact`)
	assert.NotContains(t, err.Error(), rawSpec.Name)
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "has 1 partitions, spec asks for 3")
}

func TestEnsureTopicsInvalidSpecs(t *testing.T) {
	err := kafka.EnsureTopics(context.Background(), nil, nil, kafka.TopicSpec{Name: "ok", Partitions: 1, ReplicationFactor: 1}, kafka.TopicSpec{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `topic spec 1 (""): name: must not be empty`)
}

func TestDescribeTopicMissing(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	adm, ctx := admin(t, cluster.Client(t))
	_, err := kafka.DescribeTopic(ctx, adm, "nope")
	require.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
}

func TestCheckTopicConfig(t *testing.T) {
	compact := kafka.TopicSpec{Name: "s", Partitions: 4, ReplicationFactor: 3, Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"}}
	tests := []struct {
		name         string
		spec         kafka.TopicSpec
		got          kafka.TopicDescription
		incompatible bool
		notes        []string
	}{
		{"match", compact, kafka.TopicDescription{Name: "s", Partitions: 4, ReplicationFactor: 3,
			Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"}}, false, nil},
		{"more partitions is fine", compact, kafka.TopicDescription{Name: "s", Partitions: 8, ReplicationFactor: 3,
			Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"}}, false, nil},
		{"policy order does not matter", kafka.TopicSpec{Name: "s", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact,delete"}},
			kafka.TopicDescription{Name: "s", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "delete, compact"}}, false, nil},
		{"not compacted", compact, kafka.TopicDescription{Name: "s", Partitions: 4, ReplicationFactor: 3,
			Configs: map[string]string{"cleanup.policy": "delete", "retention.ms": "1000"}}, true, nil},
		{"policy unset means delete", compact, kafka.TopicDescription{Name: "s", Partitions: 4, ReplicationFactor: 3,
			Configs: map[string]string{"retention.ms": "1000"}}, true, nil},
		{"compacted data topic", kafka.TopicSpec{Name: "d", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "delete"}},
			kafka.TopicDescription{Name: "d", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}}, true, nil},
		{"drift is only noted", compact, kafka.TopicDescription{Name: "s", Partitions: 2, ReplicationFactor: 1,
			Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "5"}}, false,
			[]string{"has 2 partitions, spec asks for 4", "has replication factor 1, spec asks for 3", "config retention.ms=5, spec asks for 1000"}},
		{"unknown counts are not compared", compact, kafka.TopicDescription{Name: "s", Partitions: -1, ReplicationFactor: -1,
			Configs: map[string]string{"cleanup.policy": "compact", "retention.ms": "1000"}}, false, nil},
		{"unreadable configs", compact, kafka.TopicDescription{Name: "s", Partitions: 4, ReplicationFactor: 3}, false,
			[]string{"configs could not be read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notes, err := kafka.CheckTopicConfig(tt.spec, tt.got)
			if tt.incompatible {
				require.ErrorIs(t, err, kafka.ErrIncompatibleTopic)
				assert.Contains(t, err.Error(), "kafka-configs.sh --alter")
			} else {
				require.NoError(t, err)
			}
			require.Len(t, notes, len(tt.notes))
			for i, n := range tt.notes {
				assert.Contains(t, notes[i], n)
			}
		})
	}
}
