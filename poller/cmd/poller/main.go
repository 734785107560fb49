// Command poller collects OpenAI organization audit logs into Kafka,
// exactly once per event for read_committed readers.
package main

import (
	"os"
	_ "time/tzdata" // time zones compiled in: the image has no /usr/share/zoneinfo

	_ "golang.org/x/crypto/x509roots/fallback" // CA roots used when the system has none (the image has no /etc/ssl)

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
