// Package config loads a service's configuration with koanf: the struct's
// defaults, then a YAML file, then environment variables, each overriding the
// last; unknown keys are errors that name the key and where it came from;
// secrets live in Secret fields that never print and may be read from files;
// and Validate joins every problem in the tree with its key path.
//
// Environment mapping: with prefix AUDITPIPE_POLLER_, the variable
// AUDITPIPE_POLLER_KAFKA__SASL__MECHANISM sets kafka.sasl.mechanism ("__"
// separates levels, the rest is lower-cased), AUDITPIPE_POLLER_KAFKA__BROKERS
// takes a comma-separated list, and AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY
// sets sources[0].admin_key (an index one past the end appends an element).
//
// An embedded struct tagged `koanf:",squash"` contributes its fields as keys
// of the embedding struct, so shared sections (service.Runtime,
// schema.SchemaRegistry) keep a flat YAML shape.
package config
