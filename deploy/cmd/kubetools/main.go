// Command kubetools builds the Kubernetes API server and etcd from source
// into the per-user cache and downloads the KEDA and Prometheus Operator
// CRDs (`make deploy-test` runs it before the tests, which then find both
// offline), printing progress and then the paths.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/auditpipe/auditpipe/deploy/internal/kubetools"
)

func main() {
	root := flag.String("root", "..", "repository root (holding "+kubetools.ModuleDir+")")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t, err := kubetools.Build(ctx, *root, os.Stderr)
	if err == nil {
		var crds []string
		if crds, err = kubetools.CRDs(ctx, *root); err == nil {
			fmt.Printf("kube-apiserver %s\netcd %s\n", t.APIServer, t.Etcd)
			for _, c := range crds {
				fmt.Printf("crd %s\n", c)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubetools: %v\n", err)
		os.Exit(1)
	}
}
