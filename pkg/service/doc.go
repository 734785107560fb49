// Package service is the whole main function of an auditpipe service: it
// parses the command line, loads and validates the configuration, prints it
// with secrets redacted, sets up logging, the metrics registry and the admin
// server, runs the service, and turns SIGINT/SIGTERM into a graceful
// shutdown bounded by shutdown_timeout.
package service
