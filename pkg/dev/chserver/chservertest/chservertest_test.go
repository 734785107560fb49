package chservertest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := chservertest.Stop(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "stopping shared server:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestNewDatabase(t *testing.T) {
	u, db := chservertest.NewDatabase(t)
	assert.Equal(t, u, chservertest.Start(t), "one server per process")
	require.NoError(t, chservertest.Exec(u, "CREATE TABLE "+db+".x (a UInt8) ENGINE = Memory"))
	require.NoError(t, chservertest.Exec(u, "INSERT INTO "+db+".x VALUES (1), (2)"))

	resp, err := http.Get(u + "/?query=" + url.QueryEscape("SELECT sum(a) FROM x") + "&database=" + db)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "3\n", string(b))

	u2, db2 := chservertest.NewDatabase(t)
	assert.Equal(t, u, u2)
	assert.NotEqual(t, db, db2)
	assert.Equal(t, u+"/"+db, chservertest.DSN(u, db))
	require.Error(t, chservertest.Exec(u, "SELEC 1"))
}
