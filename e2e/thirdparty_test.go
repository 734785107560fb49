package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// replay rewinds the enricher's consumer group on the raw topic to the
// start, as an operator would after a GeoIP update (the enricher is
// stopped): every raw event is enriched and loaded again.
func replay(t *testing.T, p *pipeline) {
	t.Helper()
	adm := admin(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, "openai-audit-raw")
	require.NoError(t, err)
	require.NoError(t, starts.Error())
	var offsets kadm.Offsets
	starts.Each(func(o kadm.ListedOffset) {
		offsets.AddOffset(o.Topic, o.Partition, o.Offset, -1)
	})
	var resp kadm.OffsetResponses
	require.Eventually(t, func() bool {
		resp, err = adm.CommitOffsets(ctx, "auditpipe-enricher", offsets)
		return err == nil && resp.Error() == nil
	}, 20*time.Second, 200*time.Millisecond, "rewinding auditpipe-enricher (the group must be empty): %v %v", err, resp.Error())
}

func admin(t testing.TB, p *pipeline) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.stack.Infra.KafkaBrokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// endOffsets sums the topic's end offsets over its partitions.
func endOffsets(t testing.TB, p *pipeline, topic string) int64 {
	t.Helper()
	ends, err := admin(t, p).ListEndOffsets(context.Background(), topic)
	require.NoError(t, err)
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

// waitLoaderCaughtUp waits until the enriched topic's end offsets add up to
// at least atLeast and the loader's group has committed up to the end.
func waitLoaderCaughtUp(t *testing.T, p *pipeline, atLeast int64) {
	t.Helper()
	adm := admin(t, p)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, "openai-audit-enriched")
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, "auditpipe-loader")
		if err != nil {
			return false
		}
		var sum int64
		caughtUp := true
		ends.Each(func(o kadm.ListedOffset) {
			sum += o.Offset
			c, ok := committed.Lookup(o.Topic, o.Partition)
			// A transaction marker may follow the last record, so the
			// committed offset may stay one short of the end.
			if !ok || c.At < o.Offset-1 {
				caughtUp = false
			}
		})
		return sum >= atLeast && caughtUp
	}, 3*time.Minute, 250*time.Millisecond, "the loader did not catch up with the replay")
}

// thirdPartyReader reads openai-audit-enriched with ClickHouse's own Kafka
// engine and its AvroConfluent format, which knows nothing of our code but
// the registry URL, and checks it decodes one row per event.
func thirdPartyReader(t *testing.T, p *pipeline) {
	t.Helper()
	startThirdPartyReader(t, p)()
}

// startThirdPartyReader starts the Kafka-engine reader with the table's
// columns as they are now; the returned check waits until it has one row
// per served event and compares them with the loaded rows.
func startThirdPartyReader(t *testing.T, p *pipeline) (check func()) {
	t.Helper()
	// ClickHouse's AvroConfluent reader wraps a timestamp-millis read into
	// a DateTime column modulo 2^32 instead of dividing by 1000; DateTime64(3)
	// reads it right (docs/schema.md tells third parties the same).
	cols := p.mustQuery(`SELECT arrayStringConcat(groupArray(concat('` + "`" + `', name, '` + "`" + ` ', if(type = 'DateTime', 'DateTime64(3)', type))), ', ')
		FROM (SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'openai_audit_logs' ORDER BY position) FORMAT TSVRaw`)
	group := fmt.Sprintf("thirdparty-%d", time.Now().UnixNano())
	p.mustQuery(fmt.Sprintf(`CREATE TABLE thirdparty_queue (%s) ENGINE = Kafka SETTINGS
		kafka_broker_list = '%s', kafka_topic_list = 'openai-audit-enriched', kafka_group_name = '%s',
		kafka_format = 'AvroConfluent', format_avro_schema_registry_url = '%s',
		kafka_flush_interval_ms = 500, kafka_poll_timeout_ms = 200`,
		cols, strings.Join(p.stack.Infra.KafkaBrokers, ","), group, p.stack.Infra.RegistryURL))
	p.mustQuery(fmt.Sprintf("CREATE TABLE thirdparty (%s) ENGINE = MergeTree ORDER BY eventID", cols))
	p.mustQuery("CREATE MATERIALIZED VIEW thirdparty_mv TO thirdparty AS SELECT * FROM thirdparty_queue")
	drop := func() {
		for _, s := range []string{"DROP TABLE IF EXISTS thirdparty_mv", "DROP TABLE IF EXISTS thirdparty_queue", "DROP TABLE IF EXISTS thirdparty"} {
			_, _ = p.query(s)
		}
	}
	t.Cleanup(drop)
	return func() {
		t.Helper()
		defer drop()
		want := len(p.sim.GroundTruth())
		p.waitCount("SELECT uniqExact(eventID) FROM thirdparty", want, 2*time.Minute)
		// Maps compare element by element in order, and a Go map has none:
		// compare them sorted.
		same := p.mustQuery(`SELECT count() FROM thirdparty AS a INNER JOIN (SELECT * FROM openai_audit_logs FINAL) AS b USING (eventID)
			WHERE a.id = b.id AND a.rawLog = b.rawLog AND toDateTime(a.eventTime) = b.eventTime AND toDateTime(a.receivedAt) = b.receivedAt
			AND a.srcCity = b.srcCity AND a.srcASNumber = b.srcASNumber AND a.srcLatitude = b.srcLatitude AND a.readOnly = b.readOnly
			AND a.resources = b.resources AND mapSort(a.actor) = mapSort(b.actor) AND mapSort(a.tags) = mapSort(b.tags)
			AND arrayMap(e -> (mapSort(e.data), e.name, e.provider, e.type, e.value), a.enrichments)
			  = arrayMap(e -> (mapSort(e.data), e.name, e.provider, e.type, e.value), b.enrichments)`)
		require.Equal(t, fmt.Sprint(p.mustQuery("SELECT count() FROM thirdparty")), same, "the third-party reader sees the same records the loader loaded")
	}
}
