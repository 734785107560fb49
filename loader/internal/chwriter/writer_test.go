package chwriter_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/auditpipe/auditpipe/loader/internal/chwriter"
	"github.com/auditpipe/auditpipe/pkg/detections"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
	"github.com/auditpipe/auditpipe/pkg/schema"
)

// newWriter returns a migrated Writer on a fresh database of the embedded
// server.
func newWriter(t *testing.T, mutate ...func(*chwriter.Config)) *chwriter.Writer {
	t.Helper()
	u, db := chservertest.NewDatabase(t)
	cfg := chwriter.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	cfg.Protocol = chwriter.ProtocolHTTP
	cfg.Addr = []string{u[len("http://"):]}
	cfg.Database = db
	w, err := chwriter.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	applied, err := w.Migrate(t.Context())
	require.NoError(t, err)
	require.Equal(t, migrationVersions(t), applied, "every embedded migration, in order")
	return w
}

// migrationVersions lists the versions of the embedded migrations.
func migrationVersions(t *testing.T) []int {
	t.Helper()
	migs, err := schema.Migrations(schema.MigrationOptions{})
	require.NoError(t, err)
	var vs []int
	for _, m := range migs {
		vs = append(vs, m.Version)
	}
	return vs
}

// row returns a record with every column set to a value derived from i.
func row(i int) schema.AuditLog {
	s := strconv.Itoa(i)
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return schema.AuditLog{
		WorkspaceID: "ws-" + s, SourceID: "src", SourceType: "openai", SourceTTL: int64(3650 + i),
		ReceivedAt: base.Add(time.Duration(i) * time.Second), ID: "id-" + s,
		EventTime: base.Add(-time.Duration(i) * time.Minute), EventName: "api_key.created", EventID: "evt-" + s,
		SrcIP: "203.0.113." + s, SrcASCountryCode: "US", SrcASNumber: 4_294_967_295 - int64(i), SrcASOrganization: "Org '" + s,
		SrcCity: "Zürich", SrcConnectionType: "Cable/DSL", SrcISP: "ISP\t" + s, SrcLatitude: 47.5 + float64(i)/1000, SrcLongitude: -8.25,
		SrcUserType: "residential", DstIP: "2001:db8::" + s, DstASCountryCode: "DE", DstASNumber: int64(i),
		DstASOrganization: "Dst", DstCity: "Berlin", DstConnectionType: "Corporate", DstISP: "DstISP",
		DstLatitude: 52.52, DstLongitude: 13.405, DstUserType: "hosting",
		Actor:       map[string]string{"type": "session", "email": "a" + s + "@example.com"},
		Tags:        map[string]string{},
		Resources:   []string{"proj_" + s, "key_" + s},
		ServiceName: "openai",
		Enrichments: []schema.Enrichment{
			{Data: map[string]string{"asn": s}, Name: "geo", Provider: "maxmind", Type: "ip", Value: "203.0.113." + s},
			{Name: "empty"},
		},
		ReadOnly: i%2 == 0, RawLog: `{"id":"` + s + "\"}\n\n", EventType: "api_key.created", ActorType: "session",
		ActorIP: "203.0.113." + s, ActorUserID: "user-" + s, ActorUserEmail: "a" + s + "@example.com",
		APIKeyID: "key-" + s, APIKeyType: "user", ServiceAccountID: "", ProjectID: "proj-" + s, ProjectName: "Project " + s,
	}
}

func ptrs(rows ...schema.AuditLog) []*schema.AuditLog {
	out := make([]*schema.AuditLog, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return out
}

func count(t *testing.T, w *chwriter.Writer, query string) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, w.Conn().QueryRow(t.Context(), query).Scan(&n))
	return n
}

func TestInsertRoundTripsEveryColumn(t *testing.T) {
	w := newWriter(t)
	rows := make([]*schema.AuditLog, 50)
	for i := range rows {
		r := row(i)
		rows[i] = &r
	}
	require.NoError(t, w.Insert(t.Context(), "t1", rows))
	newer, err := w.CheckTable(t.Context())
	require.NoError(t, err)
	assert.Empty(t, newer)

	got, err := w.Conn().Query(t.Context(), "SELECT * FROM "+schema.Table+" ORDER BY toUInt32(substring(id, 4))")
	require.NoError(t, err)
	defer got.Close()
	i := 0
	for got.Next() {
		var r schema.AuditLog
		var sttl, sasn, dasn uint32
		var es []map[string]any
		require.NoError(t, got.Scan(&r.WorkspaceID, &r.SourceID, &r.SourceType, &sttl, &r.ReceivedAt, &r.ID, &r.EventTime, &r.EventName, &r.EventID,
			&r.SrcIP, &r.SrcASCountryCode, &sasn, &r.SrcASOrganization, &r.SrcCity, &r.SrcConnectionType, &r.SrcISP, &r.SrcLatitude, &r.SrcLongitude, &r.SrcUserType,
			&r.DstIP, &r.DstASCountryCode, &dasn, &r.DstASOrganization, &r.DstCity, &r.DstConnectionType, &r.DstISP, &r.DstLatitude, &r.DstLongitude, &r.DstUserType,
			&r.Actor, &r.Tags, &r.Resources, &r.ServiceName, &es, &r.ReadOnly, &r.RawLog, &r.EventType, &r.ActorType, &r.ActorIP, &r.ActorUserID,
			&r.ActorUserEmail, &r.APIKeyID, &r.APIKeyType, &r.ServiceAccountID, &r.ProjectID, &r.ProjectName))
		r.SourceTTL, r.SrcASNumber, r.DstASNumber = int64(sttl), int64(sasn), int64(dasn)
		r.ReceivedAt, r.EventTime = r.ReceivedAt.UTC(), r.EventTime.UTC()
		for _, e := range es {
			data, _ := e["data"].(map[string]string)
			if len(data) == 0 {
				data = nil
			}
			r.Enrichments = append(r.Enrichments, schema.Enrichment{Data: data, Name: e["name"].(string),
				Provider: e["provider"].(string), Type: e["type"].(string), Value: e["value"].(string)})
		}
		assert.Equal(t, row(i), r, "row %d", i)
		i++
	}
	require.NoError(t, got.Err())
	assert.Equal(t, 50, i)
}

func TestInsertDeduplicatesByToken(t *testing.T) {
	w := newWriter(t)
	rows := ptrs(row(1), row(2), row(3))
	for range 3 {
		require.NoError(t, w.Insert(t.Context(), "topic/0/10-12", rows))
	}
	assert.Equal(t, uint64(3), count(t, w, "SELECT count() FROM "+schema.Table))
	// Another token inserts again; the engine collapses the copies at merge
	// time and FINAL hides them before.
	require.NoError(t, w.Insert(t.Context(), "topic/0/10-13", rows))
	assert.Equal(t, uint64(6), count(t, w, "SELECT count() FROM "+schema.Table))
	assert.Equal(t, uint64(3), count(t, w, "SELECT count() FROM "+schema.Table+" FINAL"))
}

func TestOptimizeOnInsert(t *testing.T) {
	// Two copies of one event in one INSERT: with optimize_on_insert the
	// engine collapses them while inserting; without it (the default) both
	// are stored until a merge, and FINAL hides the copy either way.
	for _, tc := range []struct {
		optimize bool
		want     uint64
	}{{false, 2}, {true, 1}} {
		t.Run(strconv.FormatBool(tc.optimize), func(t *testing.T) {
			w := newWriter(t, func(c *chwriter.Config) { c.OptimizeOnInsert = tc.optimize })
			require.NoError(t, w.Insert(t.Context(), "topic/0/0-1", ptrs(row(1), row(1))))
			assert.Equal(t, tc.want, count(t, w, "SELECT count() FROM "+schema.Table))
			assert.Equal(t, uint64(1), count(t, w, "SELECT count() FROM "+schema.Table+" FINAL"))
		})
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	w := newWriter(t)
	applied, err := w.Migrate(t.Context())
	require.NoError(t, err)
	assert.Empty(t, applied)
	got, err := w.AppliedMigrations(t.Context())
	require.NoError(t, err)
	migs, err := schema.Migrations(schema.MigrationOptions{})
	require.NoError(t, err)
	require.Len(t, got, len(migs))
	for _, m := range migs {
		assert.Equal(t, chwriter.Applied{Version: m.Version, Name: m.Name, Checksum: m.Checksum}, got[m.Version])
	}
}

func TestInstallDetections(t *testing.T) {
	for _, install := range []bool{true, false} {
		t.Run(strconv.FormatBool(install), func(t *testing.T) {
			var detDB string
			w := newWriter(t, func(c *chwriter.Config) {
				c.Detections.Install = install
				c.Detections.Database = "det_" + strconv.FormatInt(time.Now().UnixNano(), 36)
				detDB = c.Detections.Database
			})
			t.Cleanup(func() { _ = w.Exec(context.Background(), "DROP DATABASE IF EXISTS "+detDB+" SYNC") })
			require.NoError(t, w.InstallDetections(t.Context()))
			require.NoError(t, w.InstallDetections(t.Context()), "idempotent")
			rules, err := detections.Rules()
			require.NoError(t, err)
			want := uint64(0)
			if install {
				want = uint64(len(rules))
			}
			assert.Equal(t, want, count(t, w, "SELECT count() FROM system.tables WHERE database = '"+detDB+"' AND engine = 'MaterializedView'"))
		})
	}
}

func TestTTLBySourceTTL(t *testing.T) {
	w := newWriter(t)
	old, fresh, forever := row(1), row(2), row(3)
	old.SourceTTL, old.EventTime = 1, time.Now().UTC().Add(-72*time.Hour).Truncate(time.Second)
	fresh.SourceTTL, fresh.EventTime = 1, time.Now().UTC().Truncate(time.Second)
	forever.SourceTTL, forever.EventTime = 0, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, w.Insert(t.Context(), "ttl", ptrs(old, fresh, forever)))
	require.NoError(t, w.Exec(t.Context(), "OPTIMIZE TABLE "+schema.Table+" FINAL"))
	var ids []string
	rows, err := w.Conn().Query(t.Context(), "SELECT id FROM "+schema.Table+" ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	assert.Equal(t, []string{"id-2", "id-3"}, ids)
}

func TestInsertRejectedRowsArePermanent(t *testing.T) {
	w := newWriter(t)
	require.NoError(t, w.Exec(t.Context(), "ALTER TABLE "+schema.Table+" ADD CONSTRAINT no_poison CHECK eventName != 'poison'"))
	bad := row(1)
	bad.EventName = "poison"
	err := w.Insert(t.Context(), "bad", ptrs(row(0), bad))
	require.ErrorIs(t, err, chwriter.ErrRejected)
}

func TestInsertUnreachableIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg := chwriter.DefaultConfig()
	cfg.Protocol = chwriter.ProtocolHTTP
	cfg.Addr = []string{addr}
	cfg.DialTimeout = time.Second
	w, err := chwriter.New(cfg, nil)
	require.NoError(t, err)
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err = w.Insert(ctx, "x", ptrs(row(1)))
	require.Error(t, err)
	assert.NotErrorIs(t, err, chwriter.ErrRejected)
	require.Error(t, w.Ping(ctx))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*chwriter.Config)
		want string
	}{
		{"default", func(*chwriter.Config) {}, ""},
		{"no addr", func(c *chwriter.Config) { c.Addr = nil }, "addr"},
		{"bad addr", func(c *chwriter.Config) { c.Addr = []string{"nohost"} }, "addr[0]"},
		{"protocol", func(c *chwriter.Config) { c.Protocol = "grpc" }, "protocol"},
		{"compression", func(c *chwriter.Config) { c.Compression = "snappy" }, "compression"},
		{"database", func(c *chwriter.Config) { c.Database = "a-b" }, "database"},
		{"cluster", func(c *chwriter.Config) { c.Cluster = "a b" }, "cluster"},
		{"timeouts", func(c *chwriter.Config) { c.InsertTimeout = 0 }, "insert_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := chwriter.DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
	assert.Error(t, chwriter.TLSConfig{CAFile: "x"}.Validate())
	assert.Error(t, chwriter.TLSConfig{Enabled: true, CertFile: "x"}.Validate())
}

// TestCheckTableDuringRollingUpgrade: a newer release's migration added a
// column (ALTER TABLE … ADD COLUMN with a default); this release's check
// accepts the table, names the column, and its inserts (which name their
// columns) leave the default in it. Missing or retyped contract columns
// still fail.
func TestCheckTableDuringRollingUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alter string
		newer []schema.Column
		err   string
	}{
		{"column added at the end", "ADD COLUMN actorUserAgent String DEFAULT ''", []schema.Column{{Name: "actorUserAgent", CHType: "String"}}, ""},
		{"column added in the middle", "ADD COLUMN region LowCardinality(String) DEFAULT 'eu' AFTER srcCity", []schema.Column{{Name: "region", CHType: "LowCardinality(String)"}}, ""},
		{"contract column retyped", "MODIFY COLUMN projectName LowCardinality(String)", nil, `type of "projectName": want String, got LowCardinality(String)`},
		{"contract column dropped", "DROP COLUMN serviceAccountID", nil, `missing column "projectName"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWriter(t)
			require.NoError(t, w.Exec(t.Context(), "ALTER TABLE "+schema.Table+" "+tc.alter))
			newer, err := w.CheckTable(t.Context())
			assert.Equal(t, tc.newer, newer)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.NoError(t, w.Insert(t.Context(), "t-upgrade", ptrs(row(1), row(2))))
			col := tc.newer[0].Name
			def := map[string]string{"actorUserAgent": "''", "region": "'eu'"}[col]
			assert.Equal(t, uint64(2), count(t, w, "SELECT count() FROM "+schema.Table+" WHERE "+col+" = "+def), "the new column holds its default")
		})
	}
}
