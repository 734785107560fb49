package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Validator is implemented by every config struct. Validate checks the
// struct's own fields only and names each problem by its key relative to the
// struct ("brokers: must not be empty"); the nested structs' checks are run
// by the package's Validate, which adds the path.
type Validator interface {
	Validate() error
}

// Validate walks cfg (a struct or a pointer to one), runs Validate on every
// struct in it that has the method, nested structs and list elements
// included, and joins every problem found, each prefixed with its key path
// (kafka.sasl.mechanism, sources[1].poll_interval). It returns nil when all
// pass. The fields of an embedded `koanf:",squash"` struct are walked as the
// embedding struct's; the embedded struct's own Validate is the embedding
// struct's to call (it is promoted when the embedding struct has none).
func Validate(cfg any) error {
	return errors.Join(validate(reflect.ValueOf(cfg), "")...)
}

func validate(v reflect.Value, path string) []error {
	if !v.IsValid() {
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		return validate(v.Elem(), path)
	}
	var out []error
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == secretType {
			return nil
		}
		if val, ok := asValidator(v); ok {
			out = append(out, prefix(path, val.Validate())...)
		}
		for _, k := range keysOf(v.Type()) {
			out = append(out, validate(v.FieldByIndex(k.index), join(path, k.tag))...)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			out = append(out, validate(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			out = append(out, validate(iter.Value(), join(path, fmt.Sprint(iter.Key().Interface())))...)
		}
	}
	return out
}

func asValidator(v reflect.Value) (Validator, bool) {
	if v.CanAddr() {
		if val, ok := v.Addr().Interface().(Validator); ok {
			return val, true
		}
	}
	val, ok := v.Interface().(Validator)
	return val, ok
}

// prefix splits a joined error into its parts and puts path in front of each.
func prefix(path string, err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefix(path, e)...)
		}
		return out
	}
	if path == "" {
		return []error{err}
	}
	sep := "."
	if strings.HasPrefix(err.Error(), "[") {
		sep = ""
	}
	return []error{&pathError{path: path + sep, err: err}}
}

// pathError keeps the wrapped error reachable for errors.Is and errors.As.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
