package e2e_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGrafanaQueryExpansion pins the expansion to the plugin's own test
// cases (pkg/macros/macros_test.go and CHDatasource.test.ts of
// grafana-clickhouse-datasource).
func TestGrafanaQueryExpansion(t *testing.T) {
	from, _ := time.Parse("2006-01-02T15:04:05.000Z", "2014-11-12T11:45:26.123Z")
	to, _ := time.Parse("2006-01-02T15:04:05.000Z", "2015-11-12T11:45:26.456Z")
	g := grafanaQuery{from: from, to: to, interval: 20 * time.Second, vars: map[string][]string{
		"fieldVal": {allValue}, "fieldVal2": {"val1", "val2"}, "database": {"db"},
	}}
	tests := []struct{ in, want string }{
		{"select * from foo where $__timeFilter(cast(sth as timestamp))",
			"select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)"},
		{"select * from foo where $__timeFilter(cast(sth as timestamp) )",
			"select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) AND cast(sth as timestamp) <= toDateTime(1447328726)"},
		{"select * from foo where ( date >= $__fromTime and date <= $__toTime ) limit 100",
			"select * from foo where ( date >= toDateTime(1415792726) and date <= toDateTime(1447328726) ) limit 100"},
		{"select * from foo where ( date >= $__fromTime_ms ) and ( date <= $__toTime_ms ) limit 100",
			"select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) ) and ( date <= fromUnixTimestamp64Milli(1447328726456) ) limit 100"},
		{"SELECT $__timeInterval(t) AS time, $__interval_s AS s", "SELECT toStartOfInterval(toDateTime(t), INTERVAL 20 second) AS time, 20 AS s"},
		{"select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal);", "select stuff from table where 1=1;"},
		{"select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal) and $__conditionalAll(fieldVal in ($fieldVal2), $fieldVal2);",
			"select stuff from table where 1=1 and fieldVal in ('val1','val2');"},
		{"SELECT 1 FROM ${database}.t WHERE $__conditionalAll(x IN (${fieldVal2}), $fieldVal2)", "SELECT 1 FROM db.t WHERE x IN ('val1','val2')"},
	}
	for _, tt := range tests {
		got, err := g.expand(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
	}
	for _, bad := range []string{"SELECT $__timeFilter(a, b)", "SELECT $__unknown(x)", "SELECT $__timeFilter(toDateTime($__fromTime))", "SELECT 1 -- c", "SELECT $__conditionalAll(a, $nope)"} {
		_, err := g.expand(bad)
		assert.Error(t, err, bad)
	}
}
