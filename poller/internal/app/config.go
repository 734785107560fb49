package app

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/contract"
	"github.com/auditpipe/auditpipe/pkg/kafka"
	"github.com/auditpipe/auditpipe/pkg/service"
	"github.com/auditpipe/auditpipe/poller/internal/collect"
)

// Source defaults, applied to zero fields of each configured source.
const (
	DefaultBaseURL        = "https://api.openai.com/v1"
	DefaultPollInterval   = 60 * time.Second
	MinPollInterval       = 10 * time.Second
	DefaultBackfill       = 24 * time.Hour
	DefaultRescanWindow   = 24 * time.Hour
	DefaultRescanInterval = 10 * time.Minute
	DefaultOverlap        = 2 * time.Minute
	DefaultSourceTTLDays  = 365
	DefaultPageSize       = 100
)

// Config is the poller's configuration.
type Config struct {
	// Runtime holds the log, admin and shutdown_timeout keys.
	service.Runtime `koanf:",squash"`

	Kafka  kafka.Config `koanf:"kafka"`
	Topics TopicsConfig `koanf:"topics"`
	// Group is the consumer group that spreads sources across replicas.
	Group string `koanf:"group"`
	// Membership holds instance_id (static membership: a restarted
	// replica takes its sources back at once), session_timeout (how long
	// a silent replica keeps its sources) and rebalance_timeout.
	kafka.Membership `koanf:",squash"`
	// Collection holds the limits shared by every source.
	Collection CollectionConfig `koanf:"collection"`
	// Sources are the organizations to collect.
	Sources []SourceConfig `koanf:"sources"`
}

// TopicsConfig names and shapes the topics; missing ones are created. The
// state topic always gets cleanup.policy=compact. DLQ takes the events the
// raw topic cannot hold (over its max.message.bytes).
type TopicsConfig struct {
	Raw   kafka.TopicSpec `koanf:"raw"`
	State kafka.TopicSpec `koanf:"state"`
	DLQ   kafka.TopicSpec `koanf:"dlq"`
}

// CollectionConfig bounds the work of every source.
type CollectionConfig struct {
	// Slice is the longest time span committed in one transaction when a
	// long window (backfill, re-scan) is walked.
	Slice time.Duration `koanf:"slice"`
	// MaxSliceEvents splits a slice holding more events in two.
	MaxSliceEvents int `koanf:"max_slice_events"`
	// DedupCapacity bounds the event ids remembered per source.
	DedupCapacity int `koanf:"dedup_capacity"`
	// RequestTimeout bounds one HTTP request; MaxAttempts the attempts of
	// one page.
	RequestTimeout time.Duration `koanf:"request_timeout"`
	MaxAttempts    int           `koanf:"max_attempts"`
	// AuthRetryInterval is the pause after a 401/403.
	AuthRetryInterval time.Duration `koanf:"auth_retry_interval"`
	// TransactionTimeout is the Kafka transaction timeout.
	TransactionTimeout time.Duration `koanf:"transaction_timeout"`
}

// SourceConfig is one organization. Zero fields take the defaults listed
// in docs/poller.md (applied by withDefaults, so a value set in YAML, env
// or left out behaves the same way for every list element).
type SourceConfig struct {
	WorkspaceID  string        `koanf:"workspace_id"`
	SourceID     string        `koanf:"source_id"`
	AdminKey     config.Secret `koanf:"admin_key"`
	AdminKeyFile string        `koanf:"admin_key_file"`
	BaseURL      string        `koanf:"base_url"`
	// AllowInsecureHTTP lets base_url be plain http:// to a host that is
	// not loopback (the admin key then crosses the network in clear).
	AllowInsecureHTTP bool              `koanf:"allow_insecure_http"`
	PollInterval      time.Duration     `koanf:"poll_interval"`
	Backfill          time.Duration     `koanf:"backfill"`
	RescanWindow      time.Duration     `koanf:"rescan_window"`
	RescanInterval    time.Duration     `koanf:"rescan_interval"`
	Overlap           time.Duration     `koanf:"overlap"`
	PageSize          int               `koanf:"page_size"`
	EventTypes        []string          `koanf:"event_types"`
	ProjectIDs        []string          `koanf:"project_ids"`
	TenantOnly        *bool             `koanf:"tenant_only"`
	SourceTTLDays     int               `koanf:"source_ttl_days"`
	Tags              map[string]string `koanf:"tags"`
}

// EnvExamples are the environment variables --help shows (without the
// AUDITPIPE_POLLER_ prefix): real keys, checked by the tests.
var EnvExamples = []string{
	"SOURCES__0__ADMIN_KEY=sk-admin-… sets sources[0].admin_key (an index one past the end appends a source)",
	"SOURCES__0__SOURCE_ID=acme sets sources[0].source_id",
}

// DefaultMemoryLimit is the poller's default budget: it fits a 128 MiB
// container (see sizing.go for what it holds).
const DefaultMemoryLimit = 128 * config.MiB

// DefaultConfig returns the defaults: admin on 127.0.0.1:9101, a 128 MiB
// memory budget, a local broker, the contract's topic and group names, no
// sources.
func DefaultConfig() Config {
	rt := service.DefaultRuntime("127.0.0.1:9101")
	rt.Memory.Limit = DefaultMemoryLimit
	return Config{
		Runtime: rt,
		Kafka:   kafka.DefaultConfig(),
		Topics: TopicsConfig{
			Raw:   kafka.TopicSpec{Name: contract.TopicRaw, Partitions: 12, ReplicationFactor: -1},
			State: kafka.TopicSpec{Name: contract.TopicPollerState, Partitions: 12, ReplicationFactor: -1, Configs: map[string]string{"cleanup_policy": "compact"}},
			DLQ:   kafka.TopicSpec{Name: contract.TopicDLQ, Partitions: 1, ReplicationFactor: -1},
		},
		Group: contract.GroupPoller,
		Collection: CollectionConfig{
			Slice:              time.Hour,
			MaxSliceEvents:     20_000,
			DedupCapacity:      100_000,
			RequestTimeout:     30 * time.Second,
			MaxAttempts:        5,
			AuthRetryInterval:  5 * time.Minute,
			TransactionTimeout: 60 * time.Second,
		},
		Membership: kafka.DefaultMembership(),
	}
}

// maxDedupCapacity keeps the state record under the broker's default
// message.max.bytes (1 MiB): 8 bytes per id plus headroom.
const (
	maxDedupCapacity = 110_000
	minDedupCapacity = 1000
)

// Validate checks the top-level fields and the cross-source rules; each
// source checks itself.
func (c Config) Validate() error {
	var errs []error
	if err := c.Runtime.Validate(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.Group) == "" {
		errs = append(errs, errors.New("group: must not be empty"))
	}
	if err := c.Membership.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Topics.Raw.Name == c.Topics.State.Name {
		errs = append(errs, errors.New("topics.state.name: must differ from topics.raw.name"))
	}
	if c.Topics.DLQ.Name == c.Topics.Raw.Name || c.Topics.DLQ.Name == c.Topics.State.Name {
		errs = append(errs, errors.New("topics.dlq.name: must differ from topics.raw.name and topics.state.name"))
	}
	cc := c.Collection
	if cc.Slice < time.Second {
		errs = append(errs, errors.New("collection.slice: must be at least 1s"))
	}
	if cc.MaxSliceEvents < 100 {
		errs = append(errs, errors.New("collection.max_slice_events: must be at least 100"))
	}
	if cc.DedupCapacity < minDedupCapacity || cc.DedupCapacity > maxDedupCapacity {
		errs = append(errs, fmt.Errorf("collection.dedup_capacity: must be within %d-%d (the state record must stay under 1 MiB)", minDedupCapacity, maxDedupCapacity))
	} else if err := c.budgetProblem(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"request_timeout", cc.RequestTimeout}, {"auth_retry_interval", cc.AuthRetryInterval}, {"transaction_timeout", cc.TransactionTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("collection.%s: must be positive", d.key))
		}
	}
	if cc.MaxAttempts < 1 {
		errs = append(errs, errors.New("collection.max_attempts: must be at least 1"))
	}
	ids := map[string]int{}
	for i, s := range c.Sources {
		if s.SourceID == "" {
			continue
		}
		if j, dup := ids[s.SourceID]; dup {
			errs = append(errs, fmt.Errorf("sources[%d].source_id: %q is also sources[%d].source_id; source ids must be unique", i, s.SourceID, j))
		}
		ids[s.SourceID] = i
	}
	return errors.Join(errs...)
}

// Validate checks the fields set; zero fields take defaults.
func (s SourceConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(s.SourceID) == "" {
		errs = append(errs, errors.New("source_id: required"))
	} else if strings.ContainsAny(s.SourceID, " \t\n/") || len(s.SourceID) > 200 {
		errs = append(errs, fmt.Errorf("source_id: %q must be at most 200 characters without spaces or slashes", s.SourceID))
	}
	if strings.TrimSpace(s.WorkspaceID) == "" {
		errs = append(errs, errors.New("workspace_id: required"))
	}
	if !s.AdminKey.IsSet() {
		errs = append(errs, errors.New("admin_key: required (set it from the environment or through admin_key_file)"))
	}
	if err := s.validateBaseURL(); err != nil {
		errs = append(errs, err)
	}
	if s.PollInterval != 0 && s.PollInterval < MinPollInterval {
		errs = append(errs, fmt.Errorf("poll_interval: must be at least %s, got %s", MinPollInterval, s.PollInterval))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"backfill", s.Backfill}, {"rescan_window", s.RescanWindow}, {"rescan_interval", s.RescanInterval}, {"overlap", s.Overlap}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", d.key))
		}
	}
	if s.RescanInterval != 0 && s.RescanInterval < MinPollInterval {
		errs = append(errs, fmt.Errorf("rescan_interval: must be at least %s", MinPollInterval))
	}
	if s.PageSize < 0 || s.PageSize > 100 {
		errs = append(errs, errors.New("page_size: must be within 1-100"))
	}
	if s.SourceTTLDays < 0 {
		errs = append(errs, errors.New("source_ttl_days: must not be negative"))
	}
	return errors.Join(errs...)
}

// validateBaseURL refuses a base URL that is not http(s), that holds a user
// or password (it would be printed by --check-config and the startup log,
// so it is never printed here either), or that is plain http:// to a host
// that is not loopback without allow_insecure_http.
func (s SourceConfig) validateBaseURL() error {
	if s.BaseURL == "" {
		return nil
	}
	u, err := url.Parse(s.BaseURL)
	switch {
	case err == nil && u.User != nil:
		return errors.New("base_url: must not hold a user or password (user:password@): the admin key is the only credential, set through admin_key or admin_key_file")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		if strings.Contains(s.BaseURL, "@") {
			return errors.New("base_url: is not an http(s) URL")
		}
		return fmt.Errorf("base_url: %q is not an http(s) URL", s.BaseURL)
	case u.Scheme == "http" && !s.AllowInsecureHTTP && !isLoopback(u.Hostname()):
		return fmt.Errorf("base_url: %s sends the admin key in clear text to a host that is not loopback: use https, or set allow_insecure_http: true on this source", s.BaseURL)
	}
	return nil
}

// isLoopback reports whether host names this machine: localhost or a
// loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// withDefaults returns s with every zero field set to its default.
func (s SourceConfig) withDefaults() SourceConfig {
	if s.BaseURL == "" {
		s.BaseURL = DefaultBaseURL
	}
	if s.PollInterval == 0 {
		s.PollInterval = DefaultPollInterval
	}
	if s.Backfill == 0 {
		s.Backfill = DefaultBackfill
	}
	if s.RescanWindow == 0 {
		s.RescanWindow = DefaultRescanWindow
	}
	if s.RescanInterval == 0 {
		s.RescanInterval = DefaultRescanInterval
	}
	if s.Overlap == 0 {
		s.Overlap = DefaultOverlap
	}
	if s.PageSize == 0 {
		s.PageSize = DefaultPageSize
	}
	if s.SourceTTLDays == 0 {
		s.SourceTTLDays = DefaultSourceTTLDays
	}
	if s.TenantOnly == nil {
		t := true
		s.TenantOnly = &t
	}
	return s
}

// isTenantType reports whether an event type is tenant-scoped, so that it
// may (and must) be asked for on the tenant_only=true stream.
func isTenantType(t string) bool {
	return strings.HasPrefix(t, "tenant.") || t == "role.bound_to_resource" || t == "role.unbound_from_resource"
}

// streams returns the query streams of a source with defaults applied.
// The default stream asks for the configured types minus tenant-scoped
// ones (which it never returns); the tenant stream, when enabled, asks for
// the tenant-scoped ones. A filter that selects nothing drops its stream.
func (s SourceConfig) streams() []collect.Stream {
	var out []collect.Stream
	var def, ten []string
	for _, t := range s.EventTypes {
		if isTenantType(t) {
			ten = append(ten, t)
		} else {
			def = append(def, t)
		}
	}
	if len(s.EventTypes) == 0 || len(def) > 0 {
		out = append(out, collect.Stream{Name: "default", EventTypes: def, ProjectIDs: s.ProjectIDs})
	}
	if s.TenantOnly != nil && *s.TenantOnly && (len(s.EventTypes) == 0 || len(ten) > 0) {
		out = append(out, collect.Stream{Name: "tenant", TenantOnly: true, EventTypes: ten, ProjectIDs: s.ProjectIDs})
	}
	return out
}
