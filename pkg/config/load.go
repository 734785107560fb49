package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Options says where Load reads from.
type Options struct {
	// File is the YAML file to read; empty means none.
	File string
	// EnvPrefix selects the environment variables to read, e.g.
	// "AUDITPIPE_POLLER_". The rest of the name is the key path, lower-cased,
	// with "__" between levels and a number selecting a list element:
	// AUDITPIPE_POLLER_KAFKA__BROKERS=a:9092,b:9092 sets kafka.brokers and
	// AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY sets sources[0].admin_key.
	// Empty disables the environment.
	EnvPrefix string
	// Environ returns the environment; nil means os.Environ.
	Environ func() []string
	// Warn, if set, is told about each problem that does not stop the
	// load: a secret file others may read. Load runs before the logger
	// exists, so the caller logs them.
	Warn func(Warning)
}

// Warning is a problem of the configuration that does not stop the load.
type Warning struct {
	// Key is the key path of the setting (sources[0].admin_key_file).
	Key string
	// File and Mode are the secret file and its permissions.
	File string
	Mode fs.FileMode
	// Message says what is wrong and what to do; it never holds a
	// secret.
	Message string
}

// Load fills out (a pointer to a config struct already holding its defaults)
// from, in order, those defaults, the YAML file and the environment. Keys are
// the fields' `koanf` tags. It then resolves `*_file` secrets, rejects
// unknown keys and secrets written in the file, and runs Validate over the
// whole tree. Every problem found is returned at once, each naming its key.
func Load(out any, opts Options) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("loading configuration: want a pointer to a struct, got %T", out)
	}
	merged, ok := toMap(rv.Elem(), false).(map[string]any)
	if !ok {
		return errors.New("loading configuration: defaults are not a struct")
	}

	var fileMap map[string]any
	if opts.File != "" {
		k := koanf.New(".")
		if err := k.Load(file.Provider(opts.File), yaml.Parser()); err != nil {
			return fmt.Errorf("reading config file %s: %w", opts.File, err)
		}
		fileMap = k.Raw()
		merge(merged, deepCopy(fileMap).(map[string]any))
	}

	envKeys, err := applyEnv(merged, opts)
	if err != nil {
		return err
	}

	fresh := reflect.New(rv.Elem().Type())
	var md mapstructure.Metadata
	if err := decode(merged, fresh.Interface(), &md); err != nil {
		return fmt.Errorf("decoding configuration: %w", err)
	}
	var problems []error
	unused := md.Unused
	sort.Strings(unused)
	for _, key := range unused {
		problems = append(problems, unknownKey(key, envKeys, opts.File))
	}
	if fileMap != nil {
		problems = append(problems, secretsInFile(fileMap, rv.Elem().Type(), opts.File)...)
	}
	problems = append(problems, resolveSecretFiles(fresh.Elem(), "", opts.Warn)...)
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	rv.Elem().Set(fresh.Elem())
	return Validate(out)
}

func unknownKey(key string, envKeys map[string]string, file string) error {
	if name, ok := envKeys[key]; ok {
		return fmt.Errorf("%s: unknown configuration key (from environment variable %s)", key, name)
	}
	for k, name := range envKeys {
		if strings.HasPrefix(key, k+".") {
			return fmt.Errorf("%s: unknown configuration key (from environment variable %s)", key, name)
		}
	}
	if file != "" {
		return fmt.Errorf("%s: unknown configuration key (in %s)", key, file)
	}
	return fmt.Errorf("%s: unknown configuration key", key)
}

func decode(in map[string]any, out any, md *mapstructure.Metadata) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			mapstructure.TextUnmarshallerHookFunc(),
		),
		WeaklyTypedInput: true,
		Metadata:         md,
		Result:           out,
		TagName:          "koanf",
	})
	if err != nil {
		return err
	}
	return dec.Decode(in)
}

// merge copies src into dst: maps merge key by key, anything else (lists
// included) replaces.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// deepCopy copies nested maps and lists so that later edits of the merged
// tree leave the file's own tree as it was read.
func deepCopy(v any) any {
	switch n := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(n))
		for k, e := range n {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(n))
		for i, e := range n {
			l[i] = deepCopy(e)
		}
		return l
	default:
		return v
	}
}

// applyEnv sets the variables under opts.EnvPrefix into m and returns, for
// each key path it set, the variable's name.
func applyEnv(m map[string]any, opts Options) (map[string]string, error) {
	keys := map[string]string{}
	if opts.EnvPrefix == "" {
		return keys, nil
	}
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ
	}
	vars := slices.Clone(environ())
	slices.SortFunc(vars, envOrder) // list elements are appended in index order
	var problems []error
	for _, kv := range vars {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, opts.EnvPrefix) || name == opts.EnvPrefix {
			continue
		}
		path := strings.Split(strings.ToLower(strings.TrimPrefix(name, opts.EnvPrefix)), "__")
		_, key, err := setPath(m, path, value, "")
		if err != nil {
			problems = append(problems, fmt.Errorf("environment variable %s: %w", name, err))
			continue
		}
		keys[key] = name
	}
	return keys, errors.Join(problems...)
}

// envOrder orders environment variables by name, segment by segment
// ("__" separates them), numeric segments by value: SOURCES__2__ID comes
// before SOURCES__10__ID, so list elements are appended in index order.
func envOrder(a, b string) int {
	an, _, _ := strings.Cut(a, "=")
	bn, _, _ := strings.Cut(b, "=")
	as, bs := strings.Split(an, "__"), strings.Split(bn, "__")
	for i := 0; i < len(as) && i < len(bs); i++ {
		ai, aerr := strconv.Atoi(as[i])
		bi, berr := strconv.Atoi(bs[i])
		var c int
		if aerr == nil && berr == nil {
			c = cmp.Compare(ai, bi)
		} else {
			c = strings.Compare(as[i], bs[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(as), len(bs))
}

// setPath stores value at path inside node (nested maps and lists) and
// returns the new node and the key the decoder reports for it (a.b[0].c).
func setPath(node any, path []string, value, key string) (any, string, error) {
	if len(path) == 0 {
		return value, key, nil
	}
	seg := path[0]
	if seg == "" {
		return nil, "", errors.New("empty key segment (use \"__\" only between keys)")
	}
	switch n := node.(type) {
	case nil:
		if _, err := strconv.Atoi(seg); err == nil {
			return setPath([]any{}, path, value, key)
		}
		return setPath(map[string]any{}, path, value, key)
	case map[string]any:
		child, k, err := setPath(n[seg], path[1:], value, join(key, seg))
		if err != nil {
			return nil, "", err
		}
		n[seg] = child
		return n, k, nil
	case []any:
		idx, err := strconv.Atoi(seg)
		if err != nil {
			return nil, "", fmt.Errorf("%s is a list: the next segment must be an index, got %q", key, seg)
		}
		if idx < 0 || idx > len(n) {
			return nil, "", fmt.Errorf("%s has %d elements: index %d is out of range (append with index %d)", key, len(n), idx, len(n))
		}
		if idx == len(n) {
			n = append(n, nil)
		}
		child, k, err := setPath(n[idx], path[1:], value, fmt.Sprintf("%s[%d]", key, idx))
		if err != nil {
			return nil, "", err
		}
		n[idx] = child
		return n, k, nil
	default:
		return nil, "", fmt.Errorf("%s is a single value, not an object or list", key)
	}
}

// toMap turns a config value into the nested maps, lists and scalars the
// decoder reads back, using the `koanf` tags. With redact, set Secrets become
// "[REDACTED]" and durations their string form.
func toMap(v reflect.Value, redact bool) any {
	switch {
	case v.Type() == secretType:
		s := v.Interface().(Secret)
		if redact {
			return s.String()
		}
		return s.Value()
	case v.Type() == reflect.TypeFor[time.Duration]():
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return toMap(v.Elem(), redact)
	case reflect.Struct:
		m := map[string]any{}
		for _, k := range keysOf(v.Type()) {
			m[k.tag] = toMap(v.FieldByIndex(k.index), redact)
		}
		return m
	case reflect.Map:
		if v.IsNil() {
			return map[string]any{}
		}
		m := map[string]any{}
		iter := v.MapRange()
		for iter.Next() {
			m[fmt.Sprint(iter.Key().Interface())] = toMap(iter.Value(), redact)
		}
		return m
	case reflect.Slice, reflect.Array:
		l := make([]any, v.Len())
		for i := range l {
			l[i] = toMap(v.Index(i), redact)
		}
		return l
	default:
		return v.Interface()
	}
}

// key is one configuration key of a struct type: its tag and the index
// path of its field. The fields of an embedded struct tagged
// `koanf:",squash"` are keys of the embedding struct (no nesting level).
type key struct {
	tag   string
	index []int
	field reflect.StructField
}

// keysOf lists the keys of struct type t in field order.
func keysOf(t reflect.Type) []key {
	var out []key
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if squashed(f) {
			for _, k := range keysOf(f.Type) {
				k.index = append([]int{i}, k.index...)
				out = append(out, k)
			}
			continue
		}
		if tag := tagName(f); tag != "" {
			out = append(out, key{tag: tag, index: []int{i}, field: f})
		}
	}
	return out
}

// squashed reports whether f is an embedded struct whose fields are keys
// of the embedding struct.
func squashed(f reflect.StructField) bool {
	if !f.Anonymous || f.Type.Kind() != reflect.Struct {
		return false
	}
	_, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	return slices.Contains(strings.Split(opts, ","), "squash")
}

func tagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	if tag == "-" {
		return ""
	}
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}

// secretsInFile reports Secret fields given a value in the YAML file.
func secretsInFile(m map[string]any, t reflect.Type, file string) []error {
	var out []error
	var walk func(node any, t reflect.Type, path string)
	walk = func(node any, t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			nm, ok := node.(map[string]any)
			if !ok {
				return
			}
			for _, k := range keysOf(t) {
				f, tag := k.field, k.tag
				val, ok := nm[tag]
				if !ok {
					continue
				}
				p := join(path, tag)
				if f.Type == secretType {
					if val != nil && fmt.Sprint(val) != "" {
						out = append(out, fmt.Errorf("%s: secrets must not be written in %s: set it from the environment or name a file in %s_file", p, file, tag))
					}
					continue
				}
				walk(val, f.Type, p)
			}
		case reflect.Slice:
			l, ok := node.([]any)
			if !ok {
				return
			}
			for i, e := range l {
				walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(m, t, "")
	return out
}

// resolveSecretFiles reads each Secret whose sibling `<tag>_file` field is
// set, telling warn (when set) about files others may read.
func resolveSecretFiles(v reflect.Value, path string, warn func(Warning)) []error {
	var out []error
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			out = append(out, resolveSecretFiles(v.Elem(), path, warn)...)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			out = append(out, resolveSecretFiles(v.Index(i), fmt.Sprintf("%s[%d]", path, i), warn)...)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			return nil
		}
		keys := keysOf(v.Type())
		byTag := map[string]reflect.Value{}
		for _, k := range keys {
			byTag[k.tag] = v.FieldByIndex(k.index)
		}
		for _, k := range keys {
			tag, fv := k.tag, v.FieldByIndex(k.index)
			p := join(path, tag)
			if k.field.Type != secretType {
				out = append(out, resolveSecretFiles(fv, p, warn)...)
				continue
			}
			fileField, ok := byTag[tag+"_file"]
			if !ok || fileField.Kind() != reflect.String || fileField.String() == "" {
				continue
			}
			if fv.Interface().(Secret).IsSet() {
				out = append(out, fmt.Errorf("%s: set both directly and through %s_file: keep one", p, tag))
				continue
			}
			b, err := os.ReadFile(fileField.String())
			if err != nil {
				out = append(out, fmt.Errorf("%s_file: reading secret file: %w", p, err))
				continue
			}
			if w, ok := exposedSecretFile(p+"_file", fileField.String()); ok && warn != nil {
				warn(w)
			}
			s := strings.TrimRight(string(b), "\r\n")
			if s == "" {
				out = append(out, fmt.Errorf("%s_file: %s is empty", p, fileField.String()))
				continue
			}
			fv.Set(reflect.ValueOf(NewSecret(s)))
		}
	}
	return out
}

// exposedSecretFile reports a secret file that users other than the
// service's own may read: world-readable, or group-readable by a group
// other than the process's primary group (Kubernetes mounts secrets 0440
// with the pod's fsGroup, which is the service's own group).
func exposedSecretFile(key, path string) (Warning, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return Warning{}, false
	}
	mode := st.Mode().Perm()
	exposed := mode&0o004 != 0
	if mode&0o040 != 0 {
		gid, known := fileGroup(st)
		exposed = exposed || !known || gid != os.Getgid()
	}
	if !exposed {
		return Warning{}, false
	}
	return Warning{Key: key, File: path, Mode: mode, Message: fmt.Sprintf(
		"secret file %s (%s) has mode %s: users other than the service's may read it; chmod 600 it (or 640 with the service's own group)",
		path, key, mode)}, true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
