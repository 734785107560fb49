package config

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
)

// Scrubber removes secret values from text that came from elsewhere (an
// upstream's error message, a header it sent back) before the text is
// logged, put in an error or served. A nil *Scrubber scrubs nothing. It is
// safe for concurrent use.
type Scrubber struct {
	r *strings.Replacer
}

// NewScrubber returns a Scrubber that replaces every set secret with
// Redacted. Longer secrets are matched first, so that a secret holding
// another one is removed whole.
func NewScrubber(secrets ...Secret) *Scrubber {
	var vals []string
	for _, s := range secrets {
		if s.IsSet() && !slices.Contains(vals, s.Value()) {
			vals = append(vals, s.Value())
		}
	}
	if len(vals) == 0 {
		return &Scrubber{}
	}
	slices.SortFunc(vals, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Redacted)
	}
	return &Scrubber{r: strings.NewReplacer(pairs...)}
}

// Scrub returns s with every secret replaced by Redacted.
func (s *Scrubber) Scrub(text string) string {
	if s == nil || s.r == nil {
		return text
	}
	return s.r.Replace(text)
}

// SecretsOf returns every set Secret held in v (a config struct or a
// pointer to one), at any depth: in fields, lists and maps.
func SecretsOf(v any) []Secret {
	var out []Secret
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		if !v.IsValid() {
			return
		}
		if v.Type() == secretType {
			if s := v.Interface().(Secret); s.IsSet() {
				out = append(out, s)
			}
			return
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			iter := v.MapRange()
			for iter.Next() {
				walk(iter.Value())
			}
		}
	}
	walk(reflect.ValueOf(v))
	return out
}
