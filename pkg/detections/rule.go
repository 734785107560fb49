package detections

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/auditpipe/auditpipe/schemas"
)

// Severity ranks a finding, from INFO to CRITICAL. ClickHouse stores it as
// an Enum8 in that order, so `severity >= 'HIGH'` works in queries.
type Severity string

// The severities, lowest first.
const (
	SeverityInfo     Severity = "INFO"
	SeverityLow      Severity = "LOW"
	SeverityMedium   Severity = "MEDIUM"
	SeverityHigh     Severity = "HIGH"
	SeverityCritical Severity = "CRITICAL"
)

// Severities lists the valid severities, lowest first.
var Severities = []Severity{SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// Valid reports whether s is one of Severities.
func (s Severity) Valid() bool { return slices.Contains(Severities, s) }

// Technique is a MITRE ATT&CK (Enterprise) technique or sub-technique.
type Technique struct {
	// ID is the technique id, T1234 or T1234.001.
	ID string `yaml:"id"`
	// Name is the technique's name as ATT&CK spells it; sub-techniques as
	// "Parent: Sub-technique".
	Name string `yaml:"name"`
}

// KnobType is the type of a knob's value; it selects how the rule reads it.
type KnobType string

// The knob types.
const (
	// KnobUInt is a non-negative integer (ClickHouse UInt32).
	KnobUInt KnobType = "uint"
	// KnobFloat is a number (Float64).
	KnobFloat KnobType = "float"
	// KnobString is any string (a regular expression, a name).
	KnobString KnobType = "string"
	// KnobList is a comma-separated list, read as a lower-cased,
	// trimmed Array(String) without empty elements.
	KnobList KnobType = "list"
	// KnobBool is true or false (ClickHouse toBool: true/false/1/0).
	KnobBool KnobType = "bool"
)

// Knob is a setting of a rule that users change in detection_settings
// without editing SQL.
type Knob struct {
	Name        string   `yaml:"name"`
	Type        KnobType `yaml:"type"`
	Default     string   `yaml:"default"`
	Description string   `yaml:"description"`
}

// The knobs every rule has, declared by the package rather than by the
// rule files.
const (
	// KnobEnabled switches a rule on or off (default true).
	KnobEnabled = "enabled"
	// KnobLookback is how far back, in minutes of receivedAt or
	// eventTime, a refresh looks for new events (default 120).
	KnobLookback = "lookback_minutes"
)

// DefaultLookbackMinutes is the default of KnobLookback: two hours of
// received events, many refresh intervals, so a refresh that failed or a
// loader that lagged is caught up by the next ones.
const DefaultLookbackMinutes = 120

func commonKnobs() []Knob {
	return []Knob{
		{Name: KnobEnabled, Type: KnobBool, Default: "true", Description: "false switches the rule off"},
		{Name: KnobLookback, Type: KnobUInt, Default: strconv.Itoa(DefaultLookbackMinutes),
			Description: "each refresh considers events received (or that happened) within this many minutes"},
	}
}

// Rule is one detection: its metadata and its SELECT template.
type Rule struct {
	ID             string
	Title          string
	Severity       Severity // the highest severity the rule emits
	MITRE          Technique
	Description    string
	FalsePositives []string
	// Knobs are the rule's settings, the common ones (enabled,
	// lookback_minutes) first, then the file's in declaration order.
	Knobs []Knob
	// Query is the SELECT template (the file after its header).
	Query string
	// File is the rule's file name, Checksum the hex SHA-256 of its bytes.
	File, Checksum string
}

// Knob returns the rule's knob called name.
func (r Rule) Knob(name string) (Knob, bool) {
	for _, k := range r.Knobs {
		if k.Name == name {
			return k, true
		}
	}
	return Knob{}, false
}

// Defaults returns every knob's default by name.
func (r Rule) Defaults() map[string]string {
	out := make(map[string]string, len(r.Knobs))
	for _, k := range r.Knobs {
		out[k.Name] = k.Default
	}
	return out
}

// header is the YAML metadata block at the top of a rule file.
type header struct {
	ID             string    `yaml:"id"`
	Title          string    `yaml:"title"`
	Severity       Severity  `yaml:"severity"`
	MITRE          Technique `yaml:"mitre"`
	Description    string    `yaml:"description"`
	FalsePositives []string  `yaml:"false_positives"`
	Knobs          []Knob    `yaml:"knobs"`
}

var (
	ruleIDRE    = regexp.MustCompile(`^[a-z][a-z0-9_]{2,62}$`)
	knobNameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	techniqueRE = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
)

// Rules parses the embedded rule files (schemas/detections/rules), sorted
// by id.
func Rules() ([]Rule, error) {
	sub, err := fs.Sub(schemas.Detections, "detections/rules")
	if err != nil {
		return nil, fmt.Errorf("opening embedded detection rules: %w", err)
	}
	return RulesFromFS(sub)
}

// RulesFromFS parses every *.sql file at the root of fsys as a rule (see
// ParseRule), sorted by id. Ids must be unique and match their file names.
func RulesFromFS(fsys fs.FS) ([]Rule, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing detection rules: %w", err)
	}
	var rules []Rule
	var errs []error
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		src, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading detection rule %s: %w", e.Name(), err)
		}
		r, err := ParseRule(e.Name(), src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want := strings.TrimSuffix(e.Name(), ".sql"); r.ID != want {
			errs = append(errs, fmt.Errorf("detection rule %s: id %q must equal the file name %q", e.Name(), r.ID, want))
			continue
		}
		rules = append(rules, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, errors.New("no detection rules")
	}
	slices.SortFunc(rules, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) })
	return rules, nil
}

// ParseRule parses one rule file: a header of "--" comment lines holding
// YAML (id, title, severity, mitre {id, name}, description,
// false_positives, knobs [{name, type, default, description}]; unknown keys
// are errors), then the SELECT template. Every field is required; knobs
// may be empty. name is used in error messages. Every problem is reported.
func ParseRule(name string, src []byte) (Rule, error) {
	yamlText, query := splitHeader(src)
	if strings.TrimSpace(yamlText) == "" {
		return Rule{}, fmt.Errorf("detection rule %s: no YAML header (leading \"-- \" comment lines)", name)
	}
	var h header
	dec := yaml.NewDecoder(strings.NewReader(yamlText))
	dec.KnownFields(true)
	if err := dec.Decode(&h); err != nil {
		return Rule{}, fmt.Errorf("detection rule %s: parsing the YAML header: %w", name, err)
	}
	sum := sha256.Sum256(src)
	r := Rule{
		ID: h.ID, Title: h.Title, Severity: h.Severity, MITRE: h.MITRE,
		Description: strings.TrimSpace(h.Description), FalsePositives: h.FalsePositives,
		Knobs: append(commonKnobs(), h.Knobs...), Query: query,
		File: name, Checksum: hex.EncodeToString(sum[:]),
	}
	if err := r.validate(); err != nil {
		return Rule{}, fmt.Errorf("detection rule %s: %w", name, err)
	}
	return r, nil
}

// splitHeader returns the leading "--" comment lines with the "--" and one
// following space removed, and the rest of src.
func splitHeader(src []byte) (yamlText, rest string) {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	consumed := 0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "--") {
			break
		}
		consumed += len(sc.Bytes()) + 1
		line = strings.TrimPrefix(line, "--")
		line = strings.TrimPrefix(line, " ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String(), string(src[min(consumed, len(src)):])
}

func (r Rule) validate() error {
	var errs []error
	if !ruleIDRE.MatchString(r.ID) {
		errs = append(errs, fmt.Errorf("id %q: want lower_snake_case, 3 to 63 characters", r.ID))
	}
	if strings.TrimSpace(r.Title) == "" {
		errs = append(errs, errors.New("title: required"))
	}
	if !r.Severity.Valid() {
		errs = append(errs, fmt.Errorf("severity %q: want one of %v", r.Severity, Severities))
	}
	if !techniqueRE.MatchString(r.MITRE.ID) {
		errs = append(errs, fmt.Errorf("mitre.id %q: want T1234 or T1234.001", r.MITRE.ID))
	}
	if strings.TrimSpace(r.MITRE.Name) == "" {
		errs = append(errs, errors.New("mitre.name: required"))
	}
	if r.Description == "" {
		errs = append(errs, errors.New("description: required"))
	}
	if len(r.FalsePositives) == 0 {
		errs = append(errs, errors.New("false_positives: list at least one (or why there are none)"))
	}
	for i, fp := range r.FalsePositives {
		if strings.TrimSpace(fp) == "" {
			errs = append(errs, fmt.Errorf("false_positives[%d]: empty", i))
		}
	}
	seen := map[string]bool{}
	for i, k := range r.Knobs {
		if seen[k.Name] {
			errs = append(errs, fmt.Errorf("knobs[%d] %q: declared twice (enabled and lookback_minutes are common to every rule)", i, k.Name))
		}
		seen[k.Name] = true
		if err := k.validate(); err != nil {
			errs = append(errs, fmt.Errorf("knob %q: %w", k.Name, err))
		}
	}
	if strings.TrimSpace(r.Query) == "" {
		errs = append(errs, errors.New("no SELECT after the header"))
	}
	return errors.Join(errs...)
}

func (k Knob) validate() error {
	var errs []error
	if !knobNameRE.MatchString(k.Name) {
		errs = append(errs, fmt.Errorf("name: want lower_snake_case"))
	}
	if strings.TrimSpace(k.Description) == "" {
		errs = append(errs, errors.New("description: required"))
	}
	if err := k.Type.check(k.Default); err != nil {
		errs = append(errs, fmt.Errorf("default: %w", err))
	}
	return errors.Join(errs...)
}

// check reports whether v is a valid value of type t, as ClickHouse will
// read it.
func (t KnobType) check(v string) error {
	switch t {
	case KnobUInt:
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return fmt.Errorf("%q is not a uint32", v)
		}
	case KnobFloat:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
	case KnobBool:
		if v != "true" && v != "false" {
			return fmt.Errorf("%q is not true or false", v)
		}
	case KnobString, KnobList:
	default:
		return fmt.Errorf("type %q: want uint, float, string, list or bool", t)
	}
	return nil
}
