package telemetry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LogConfig chooses the log format and level.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `koanf:"level"`
	// Format is json or text.
	Format string `koanf:"format"`
}

// DefaultLogConfig logs JSON at info.
func DefaultLogConfig() LogConfig { return LogConfig{Level: "info", Format: "json"} }

// Validate checks the level and format.
func (c LogConfig) Validate() error {
	var errs []error
	if _, err := parseLevel(c.Level); err != nil {
		errs = append(errs, err)
	}
	if c.Format != "json" && c.Format != "text" {
		errs = append(errs, fmt.Errorf("format: unknown %q (want json or text)", c.Format))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("level: unknown %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// NewLogger returns a logger writing to w as the config says.
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("format: unknown %q (want json or text)", c.Format)
	}
}
