// Command loader loads the enriched audit records from Kafka into
// ClickHouse, effectively once.
package main

import (
	"os"
	_ "time/tzdata" // time zones compiled in: the image has no /usr/share/zoneinfo

	_ "golang.org/x/crypto/x509roots/fallback" // CA roots used when the system has none (the image has no /etc/ssl)

	"github.com/auditpipe/auditpipe/loader/internal/app"
	"github.com/auditpipe/auditpipe/pkg/service"
)

func main() {
	os.Exit(service.Main(service.Spec[app.Config]{
		Name:      "loader",
		EnvPrefix: "AUDITPIPE_LOADER_",
		Defaults:  app.DefaultConfig,
		Run:       app.Run,
	}, os.Args[1:]))
}
