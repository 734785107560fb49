// Package helm holds the tests of the auditpipe Helm chart in
// deploy/helm/auditpipe: it renders the chart with Helm's Go library,
// decodes every manifest strictly into the Kubernetes API types, checks the
// KEDA and Prometheus Operator objects, parses the alert expressions as
// PromQL, and runs the service binaries on the configuration the chart
// hands them.
package helm
