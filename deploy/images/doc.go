// Package images builds the services' OCI images without a container
// runtime, the way ko does: a static Go binary on an empty base.
//
// Each image has two layers, both made here from nothing: a base layer
// shaped like distroless/static (/etc/passwd and /etc/group naming the
// nonroot user 65532, /tmp, /home/nonroot) and a layer holding only the
// binary at /usr/local/bin/<service>. The binary is the entrypoint and the
// image runs as 65532:65532; there is no shell. CA roots and time zones are
// compiled into the binaries (golang.org/x/crypto/x509roots/fallback and
// time/tzdata), since the image has no files for them.
//
// Builds are reproducible: every timestamp (file times in the layers, the
// config's created time, history) is the Spec's Created time, normally
// SOURCE_DATE_EPOCH or the commit time; files are written in a fixed order
// with fixed owners; gzip output depends only on the input. The same
// binaries and Spec therefore give the same digests.
//
// Compile builds a binary with CGO_ENABLED=0 -trimpath from a service's own
// module (GOWORK=off: the versions in its go.mod, whatever other modules of
// the workspace ask for); CheckBinary refuses a binary that is not a static
// ELF executable for the image's platform.
package images
