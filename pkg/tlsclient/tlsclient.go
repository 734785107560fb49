// Package tlsclient builds the client side of TLS from configuration: a
// CA bundle, an optional client certificate for mutual TLS, a server name
// and, never for production, skipping verification. Kafka (pkg/kafka) and
// ClickHouse (the loader) connections share it, so their tls keys mean the
// same.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/auditpipe/auditpipe/pkg/config"
)

// Config configures TLS towards a server (a Kafka broker, ClickHouse).
type Config struct {
	// Enabled turns TLS on. The other fields are only allowed when it is.
	Enabled bool `koanf:"enabled"`
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string `koanf:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS. Set both or neither.
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	// ServerName overrides the name verified in the server certificates;
	// by default it is the host being dialled.
	ServerName string `koanf:"server_name"`
	// InsecureSkipVerify disables certificate verification. Never in
	// production.
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`
}

// Validate reports every problem in c, joined, each naming its field.
// Files must exist and be readable.
func (c Config) Validate() error {
	var errs []error
	files := []struct{ name, path string }{
		{"ca_file", c.CAFile},
		{"cert_file", c.CertFile},
		{"key_file", c.KeyFile},
	}
	if !c.Enabled {
		for _, f := range files {
			if f.path != "" {
				errs = append(errs, fmt.Errorf("%s: set but enabled is false", f.name))
			}
		}
		if c.ServerName != "" {
			errs = append(errs, errors.New("server_name: set but enabled is false"))
		}
		if c.InsecureSkipVerify {
			errs = append(errs, errors.New("insecure_skip_verify: set but enabled is false"))
		}
		return errors.Join(errs...)
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := config.ReadableFile(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if c.CertFile != "" && c.KeyFile == "" {
		errs = append(errs, errors.New("key_file: must be set when cert_file is"))
	}
	if c.KeyFile != "" && c.CertFile == "" {
		errs = append(errs, errors.New("cert_file: must be set when key_file is"))
	}
	return errors.Join(errs...)
}

// Build loads the files named in c into a tls.Config (TLS 1.2 or later).
// It returns nil when TLS is not enabled.
func (c Config) Build() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as never for production
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading tls.ca_file %q: no PEM certificate found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading tls.cert_file %q and tls.key_file %q: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
