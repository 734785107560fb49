package kafka_test

import (
	"testing"

	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// FuzzCheckTopicConfig checks that comparing cleanup policies never
// panics and is symmetric: a and b are compatible exactly when b and a are.
func FuzzCheckTopicConfig(f *testing.F) {
	for _, s := range [][2]string{{"compact", "compact"}, {"compact,delete", "delete, compact"}, {"delete", ""}, {"x,", ",compact"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		spec := func(p string) kafka.TopicSpec {
			return kafka.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": p}}
		}
		desc := func(p string) kafka.TopicDescription {
			return kafka.TopicDescription{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": p}}
		}
		_, errAB := kafka.CheckTopicConfig(spec(a), desc(b))
		_, errBA := kafka.CheckTopicConfig(spec(b), desc(a))
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("asymmetric: %q vs %q: %v / %v", a, b, errAB, errBA)
		}
		if a == b && errAB != nil {
			t.Fatalf("%q incompatible with itself: %v", a, errAB)
		}
		_ = spec(a).Validate()
	})
}
