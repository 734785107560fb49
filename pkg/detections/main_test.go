package detections_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := closeShared(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "dropping the shared test databases:", err)
		code = 1
	}
	if err := chservertest.Stop(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "stopping the shared ClickHouse:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
