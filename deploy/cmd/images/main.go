// Command images builds the services' OCI images without a container
// runtime (`make images`): a multi-platform OCI layout per service under
// <out>/oci/<service> and a docker-loadable tarball per platform.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/deploy/images"
)

func main() {
	fs := flag.NewFlagSet("images", flag.ExitOnError)
	root := fs.String("root", "..", "repository root (holding poller/, enricher/, loader/)")
	out := fs.String("out", "../bin/images", "output directory")
	services := fs.String("services", "poller,enricher,loader", "services to build, comma-separated")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms, comma-separated")
	repo := fs.String("repository", "auditpipe", "image name prefix: <repository>/<service>:<version>")
	version := fs.String("version", "", "version: image tag, label and the binaries' --version (default: the chart's appVersion, "+images.ChartPath+", the tag the chart deploys)")
	revision := fs.String("revision", "unknown", "source revision (git commit) for the label")
	source := fs.String("source", "https://github.com/auditpipe/auditpipe", "source repository URL for the label")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time written into the images (default $SOURCE_DATE_EPOCH)")
	_ = fs.Parse(os.Args[1:])

	if err := run(*root, *out, *services, *platforms, *repo, *epoch, images.Spec{Version: *version, Revision: *revision, Source: *source}); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func run(root, out, services, platforms, repo, epoch string, spec images.Spec) error {
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("-epoch / SOURCE_DATE_EPOCH %q: want Unix seconds (e.g. git log -1 --format=%%ct)", epoch)
	}
	spec.Created = time.Unix(secs, 0).UTC()
	if spec.Version == "" {
		if spec.Version, err = images.AppVersion(root); err != nil {
			return err
		}
	}
	plats, err := images.ParsePlatforms(platforms)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	r := images.Release{Root: root, Out: out, Services: strings.Split(services, ","), Platforms: plats, Repository: repo, Spec: spec}
	built, err := r.Run(ctx, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Print(images.Summary(built))
	fmt.Printf("\nOCI layouts: %s/oci/<service>; docker load -i %s/<service>-linux-<arch>.tar; digests in %s/digests.txt\n", out, out, out)
	return nil
}
