// Command poller collects OpenAI organization audit logs into Kafka,
// exactly once per event for read_committed readers.
package main

import (
	"os"

	"github.com/auditpipe/auditpipe/pkg/service"
	"github.com/auditpipe/auditpipe/poller/internal/app"
)

func main() {
	os.Exit(service.Main(service.Spec[app.Config]{
		Name:        "poller",
		EnvPrefix:   "AUDITPIPE_POLLER_",
		Defaults:    app.DefaultConfig,
		EnvExamples: app.EnvExamples,
		Run:         app.Run,
	}, os.Args[1:]))
}
