package main

import (
	"os"
	_ "time/tzdata" // time zones compiled in: the image has no /usr/share/zoneinfo

	_ "golang.org/x/crypto/x509roots/fallback" // CA roots used when the system has none (the image has no /etc/ssl)

	"github.com/auditpipe/auditpipe/enricher/internal/app"
	"github.com/auditpipe/auditpipe/pkg/service"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "replay" {
		os.Exit(app.ReplayMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(service.Main(service.Spec[app.Config]{
		Name:      "enricher",
		EnvPrefix: "AUDITPIPE_ENRICHER_",
		Defaults:  app.DefaultConfig,
		Run:       app.Run,
	}, os.Args[1:]))
}
