package schema

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/auditpipe/auditpipe/pkg/config"
)

// SchemaRegistry is how a service reaches a Confluent-compatible Schema
// Registry: the connection keys of a service's `registry` section, which
// embeds it with `koanf:",squash"` and adds its own keys beside them.
type SchemaRegistry struct {
	// URLs are the registry base URLs (http or https).
	URLs []string `koanf:"urls"`
	// Username and Password enable HTTP basic auth when Username is set;
	// the password comes from the environment or PasswordFile.
	Username     string        `koanf:"username"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
	// Timeout bounds each request.
	Timeout time.Duration `koanf:"timeout"`
}

// Problems lists every invalid field by its key (urls[i], timeout,
// username); empty when the connection is usable. The embedding section's
// Validate calls it.
func (r SchemaRegistry) Problems() []error {
	var errs []error
	if len(r.URLs) == 0 {
		errs = append(errs, errors.New("urls: at least one is required"))
	}
	for i, u := range r.URLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("urls[%d]: %q: want http(s)://host[:port]", i, u))
		}
	}
	if r.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if r.Password.IsSet() && r.Username == "" {
		errs = append(errs, errors.New("username: required with a password"))
	}
	return errs
}

// Client returns a registry client that names itself userAgent. It does
// not contact the registry.
func (r SchemaRegistry) Client(userAgent string) (*sr.Client, error) {
	opts := []sr.ClientOpt{sr.URLs(r.URLs...), sr.HTTPClient(&http.Client{Timeout: r.Timeout})}
	if userAgent != "" {
		opts = append(opts, sr.UserAgent(userAgent))
	}
	if r.Username != "" {
		opts = append(opts, sr.BasicAuth(r.Username, r.Password.Value()))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating schema registry client: %w", err)
	}
	return cl, nil
}
