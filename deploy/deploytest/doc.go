// Package deploytest exercises the production path for real (`make
// deploy-test`, build tag deploytest): the images of `make images` in
// podman, the rendered chart in `podman kube play`, the chart installed,
// upgraded and uninstalled with Helm on a real kube-apiserver and etcd under
// PodSecurity restricted with the real KEDA and Prometheus Operator CRDs,
// and the alert rules through promtool. It needs root, podman, runc and
// catatonit, the images (AUDITPIPE_IMAGES, default ../../bin/images), the
// Kubernetes tools built by cmd/kubetools and promtool (PROMTOOL); the
// Makefile provides all of them and runs it in a private network namespace.
package deploytest
