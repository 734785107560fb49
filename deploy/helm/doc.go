// Package helm renders the auditpipe Helm chart in deploy/helm/auditpipe
// (Render, as `helm template` does) and holds its tests: they decode every
// manifest strictly into the Kubernetes API types, check the KEDA and
// Prometheus Operator objects, parse the alert expressions as PromQL, and
// run the service binaries on the configuration the chart hands them.
// `make deploy-test` (package deploytest) runs the chart for real.
package helm
