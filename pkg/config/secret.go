package config

import "reflect"

// Redacted is what a set Secret prints as, everywhere: logs, errors, the
// effective-configuration dump.
const Redacted = "[REDACTED]"

// Secret holds a credential (an admin key, a password). Its String, GoString,
// MarshalText and LogValue forms are "[REDACTED]" when set and "" when empty,
// so a Secret cannot leak through fmt, slog, YAML or JSON by accident. Read
// the value with Value, at the one place that sends it.
//
// A Secret field named `x` (koanf tag) may be filled from the environment or
// from the file named by a sibling string field tagged `x_file`; Load rejects
// a Secret written directly in a YAML file.
type Secret struct{ value string }

// NewSecret returns a Secret holding v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Value returns the secret itself. Never log it.
func (s Secret) Value() string { return s.value }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.value != "" }

// String implements fmt.Stringer with the redacted form.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer with the redacted form.
func (s Secret) GoString() string { return s.String() }

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it stores the text as is.
func (s *Secret) UnmarshalText(b []byte) error {
	s.value = string(b)
	return nil
}

var secretType = reflect.TypeFor[Secret]()
