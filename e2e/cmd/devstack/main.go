// Command devstack runs the whole auditpipe pipeline on embedded
// infrastructure; `make run` starts it. See package devstack.
package main

import (
	"os"

	"github.com/auditpipe/auditpipe/e2e/devstack"
)

func main() {
	os.Exit(devstack.Main(os.Args[1:], os.Stdout, os.Stderr))
}
