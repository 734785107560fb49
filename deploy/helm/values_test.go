package helm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadValuesFailAtRenderTime: a mistake in the values stops `helm
// install` with a message that names the value and says what is wrong.
func TestBadValuesFailAtRenderTime(t *testing.T) {
	source := func(extra values) values {
		return merge(values{"source_id": "acme", "workspace_id": "ws", "admin_key_secret": values{"name": "openai-acme"}}, extra)
	}
	cases := []struct {
		name   string
		values values
		want   []string
	}{
		{name: "no sources", values: values{"poller": values{"sources": []any{}}},
			want: []string{"poller.sources is empty: the pollers would run and collect nothing"}},
		{name: "negative replicas", values: values{"poller": values{"replicas": -1}},
			want: []string{"/poller/replicas", "minimum"}},
		{name: "source without a secret", values: values{"poller": values{"sources": []any{values{"source_id": "acme", "workspace_id": "ws"}}}},
			want: []string{"/poller/sources/0", "admin_key_secret"}},
		{name: "source with an empty secret name", values: values{"poller": values{"sources": []any{source(values{"admin_key_secret": values{"name": ""}})}}},
			want: []string{"/poller/sources/0/admin_key_secret/name", "minLength"}},
		{name: "source without an id", values: values{"poller": values{"sources": []any{values{"workspace_id": "ws", "admin_key_secret": values{"name": "s"}}}}},
			want: []string{"/poller/sources/0", "source_id"}},
		{name: "duplicate source ids", values: values{"poller": values{"sources": []any{source(nil), source(nil)}}},
			want: []string{`poller.sources[1].source_id "acme" is also poller.sources[0].source_id`}},
		{name: "enricher autoscaled past its partitions", values: values{"autoscaling": values{"enabled": true, "enricher": values{"maxReplicas": 13}}},
			want: []string{"autoscaling.enricher.maxReplicas (13) is above topics.raw.partitions (12)"}},
		{name: "loader autoscaled past its partitions", values: values{"autoscaling": values{"enabled": true}, "topics": values{"enriched": values{"partitions": 3}}},
			want: []string{"autoscaling.loader.maxReplicas (6) is above topics.enriched.partitions (3)"}},
		{name: "autoscaling min above max", values: values{"autoscaling": values{"enabled": true, "loader": values{"minReplicas": 4, "maxReplicas": 2}}},
			want: []string{"autoscaling.loader.minReplicas (4) is above its maxReplicas (2)"}},
		{name: "SASL without a password Secret", values: values{"kafka": values{"sasl": values{"mechanism": "PLAIN", "username": "u"}}},
			want: []string{"kafkaSecrets.saslPassword.name is empty"}},
		{name: "unknown SASL mechanism", values: values{"kafka": values{"sasl": values{"mechanism": "SCRAM"}}},
			want: []string{"/kafka/sasl/mechanism"}},
		{name: "shared kafka key in a service's config", values: values{"poller": values{"config": values{"kafka": values{"brokers": []any{"k:9092"}}}}},
			want: []string{"poller.config.kafka.brokers: set it in the shared `kafka` value"}},
		{name: "chart-owned key in a service's config", values: values{"enricher": values{"config": values{"topics": values{"raw": "x"}}}},
			want: []string{"enricher.config.topics: the chart sets this key"}},
		{name: "misspelt value", values: values{"autoscalling": values{"enabled": true}},
			want: []string{"autoscalling"}},
		{name: "broker without a port", values: values{"kafka": values{"brokers": []any{"kafka"}}},
			want: []string{"/kafka/brokers/0"}},
		{name: "no brokers", values: values{"kafka": values{"brokers": []any{}}},
			want: []string{"/kafka/brokers", "minItems"}},
		{name: "zero partitions", values: values{"topics": values{"raw": values{"partitions": 0}}},
			want: []string{"/topics/raw/partitions", "minimum"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, merge(withSource, tc.values))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
