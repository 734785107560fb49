package chserver

import (
	"maps"
	"sort"
	"strings"

	"github.com/auditpipe/auditpipe/pkg/dev/chdb"
)

// baseline settings applied on every connection, restored instead of the
// engine default when a request stops overriding them. chdb defaults to
// async_insert=1; a ClickHouse server defaults to 0.
var baseline = map[string]string{"async_insert": "0"}

// session tracks one engine connection's state (current database and the
// settings applied on top of the baseline), so a request only issues USE or
// SET when it differs from the previous request on that connection.
type session struct {
	database string
	settings map[string]string
}

func (ss *session) init(c *chdb.Conn) error {
	ss.database = "default"
	ss.settings = map[string]string{}
	return c.Exec("SET " + assignments(baseline))
}

// prepare switches c to database and exactly the given settings.
func (ss *session) prepare(c *chdb.Conn, database string, settings map[string]string) error {
	if database == "" {
		database = "default"
	}
	if database != ss.database {
		if err := c.Exec("USE " + quoteIdent(database)); err != nil {
			return err
		}
		ss.database = database
	}
	change := map[string]string{}
	var reset []string
	for k, v := range settings {
		if old, ok := ss.settings[k]; !ok || old != v {
			change[k] = v
		}
	}
	for k := range ss.settings {
		if _, ok := settings[k]; !ok {
			if v, ok := baseline[k]; ok {
				change[k] = v
			} else {
				reset = append(reset, k)
			}
		}
	}
	if len(change) == 0 && len(reset) == 0 {
		return nil
	}
	sort.Strings(reset)
	parts := []string{}
	if len(change) > 0 {
		parts = append(parts, assignments(change))
	}
	for _, k := range reset {
		parts = append(parts, k+" = DEFAULT")
	}
	if err := c.Exec("SET " + strings.Join(parts, ", ")); err != nil {
		// Partially applied, perhaps: return to a known state.
		ss.restore(c)
		return err
	}
	ss.settings = maps.Clone(settings)
	return nil
}

// restore resets every setting this session may have changed.
func (ss *session) restore(c *chdb.Conn) {
	for k := range ss.settings {
		if v, ok := baseline[k]; ok {
			_ = c.Exec("SET " + k + " = " + quoteString(v))
		} else {
			_ = c.Exec("SET " + k + " = DEFAULT")
		}
	}
	ss.settings = map[string]string{}
}

func assignments(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " = " + quoteString(m[k])
	}
	return strings.Join(parts, ", ")
}
