package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrIncompatibleTopic is wrapped by errors about an existing topic whose
// settings break its use, such as a state topic that is not compacted.
var ErrIncompatibleTopic = errors.New("existing topic is incompatible with its spec")

// TopicSpec describes a topic a service needs. Services embed it in their
// configuration as a named field.
type TopicSpec struct {
	// Name is the topic name.
	Name string `koanf:"name"`
	// Partitions is the partition count used when creating the topic.
	Partitions int32 `koanf:"partitions"`
	// ReplicationFactor is the replica count used when creating the topic;
	// -1 leaves it to the broker's default.replication.factor.
	ReplicationFactor int16 `koanf:"replication_factor"`
	// Configs are topic configs such as cleanup.policy. Keys may be
	// written with underscores (cleanup_policy) so they survive the
	// configuration loader's "." delimiter and environment variables;
	// Kafka topic config names contain no underscores, so each one is read
	// as a dot.
	Configs map[string]string `koanf:"configs"`
}

// TopicDescription is what the cluster reports about an existing topic.
type TopicDescription struct {
	Name string
	// Partitions and ReplicationFactor are -1 when unknown (the topic
	// exists but is still settling).
	Partitions        int32
	ReplicationFactor int16
	// Configs holds the topic's effective configs (explicit and default);
	// nil when they could not be read.
	Configs map[string]string
}

// configs returns s.Configs with keys in Kafka's dotted spelling.
func (s TopicSpec) configs() map[string]string {
	out := make(map[string]string, len(s.Configs))
	for k, v := range s.Configs {
		out[strings.ReplaceAll(k, "_", ".")] = v
	}
	return out
}

// Validate reports every problem in s, joined, each naming its field.
func (s TopicSpec) Validate() error {
	var errs []error
	if err := validateTopicName(s.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if s.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions: must be at least 1, got %d", s.Partitions))
	}
	if s.ReplicationFactor < 1 && s.ReplicationFactor != -1 {
		errs = append(errs, fmt.Errorf("replication_factor: must be at least 1 (or -1 for the broker default), got %d", s.ReplicationFactor))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, errors.New("configs: key must not be empty"))
		}
	}
	if p, ok := s.configs()["cleanup.policy"]; ok {
		if _, err := parseCleanupPolicy(p); err != nil {
			errs = append(errs, fmt.Errorf("configs: cleanup.policy: %w", err))
		}
	}
	return errors.Join(errs...)
}

func validateTopicName(n string) error {
	switch {
	case n == "":
		return errors.New("must not be empty")
	case n == "." || n == "..":
		return fmt.Errorf("%q is not a valid topic name", n)
	case len(n) > 249:
		return fmt.Errorf("must be at most 249 characters, got %d", len(n))
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q has %q; only ASCII letters, digits, '.', '_' and '-' are allowed", n, r)
		}
	}
	return nil
}

// parseCleanupPolicy returns the set of policies in a cleanup.policy value.
func parseCleanupPolicy(v string) (map[string]bool, error) {
	set := map[string]bool{}
	for p := range strings.SplitSeq(v, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "delete", "compact":
			set[p] = true
		default:
			return nil, fmt.Errorf("unknown policy %q in %q, want delete, compact or both", p, v)
		}
	}
	return set, nil
}

// CheckTopicConfig compares an existing topic with its spec. It returns an
// error wrapping ErrIncompatibleTopic when the topic cannot serve its
// purpose (today: a cleanup.policy other than the spec's, e.g. a state topic
// that is not compacted, or a data topic that would be compacted), and notes
// for harmless drift (fewer partitions or replicas than asked, other configs
// that differ), which callers should log. It does not contact the cluster.
func CheckTopicConfig(spec TopicSpec, got TopicDescription) (notes []string, err error) {
	if spec.Partitions > 0 && got.Partitions >= 0 && got.Partitions < spec.Partitions {
		notes = append(notes, fmt.Sprintf("has %d partitions, spec asks for %d (less parallelism)", got.Partitions, spec.Partitions))
	}
	if spec.ReplicationFactor > 0 && got.ReplicationFactor >= 0 && got.ReplicationFactor < spec.ReplicationFactor {
		notes = append(notes, fmt.Sprintf("has replication factor %d, spec asks for %d (less durability)", got.ReplicationFactor, spec.ReplicationFactor))
	}
	if got.Configs == nil {
		if len(spec.Configs) > 0 {
			notes = append(notes, "configs could not be read, so they were not checked")
		}
		return notes, nil
	}
	want := spec.configs()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		have, ok := got.Configs[k]
		if k == "cleanup.policy" {
			if !ok {
				have = "delete" // Kafka's default
			}
			if !samePolicy(want[k], have) {
				err = fmt.Errorf("topic %q has cleanup.policy=%s, spec needs %s; recreate it or run kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=%s: %w",
					got.Name, have, want[k], got.Name, want[k], ErrIncompatibleTopic)
			}
			continue
		}
		if !ok {
			notes = append(notes, fmt.Sprintf("config %s is unset, spec asks for %s", k, want[k]))
		} else if have != want[k] {
			notes = append(notes, fmt.Sprintf("config %s=%s, spec asks for %s", k, have, want[k]))
		}
	}
	return notes, err
}

func samePolicy(a, b string) bool {
	pa, errA := parseCleanupPolicy(a)
	pb, errB := parseCleanupPolicy(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return maps.Equal(pa, pb)
}

// DescribeTopic returns what the cluster reports about topic. It returns an
// error wrapping kerr.UnknownTopicOrPartition when the topic does not exist.
// Configs is nil when the client may not describe them.
//
// A topic created a moment ago may not be in every broker's metadata yet
// (Apache Kafka propagates it asynchronously), so a missing topic is asked
// for again for up to TopicVisibleTimeout before it counts as missing.
func DescribeTopic(ctx context.Context, adm *kadm.Client, topic string) (TopicDescription, error) {
	deadline := time.Now().Add(TopicVisibleTimeout)
	wait := 50 * time.Millisecond
	for {
		ds, _, err := describeTopics(ctx, adm, topic)
		if err != nil {
			return TopicDescription{}, err
		}
		if d, ok := ds[topic]; ok {
			return d, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return TopicDescription{}, fmt.Errorf("describing topic %q: %w", topic, kerr.UnknownTopicOrPartition)
		}
		select {
		case <-ctx.Done():
			return TopicDescription{}, fmt.Errorf("describing topic %q: %w", topic, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// TopicVisibleTimeout bounds how long DescribeTopic waits for a topic to
// appear in the cluster's metadata.
const TopicVisibleTimeout = 10 * time.Second

// describeTopics returns the existing topics among names with their
// configs, and the number of brokers.
func describeTopics(ctx context.Context, adm *kadm.Client, names ...string) (map[string]TopicDescription, int, error) {
	// kadm answers Metadata from the client's cache (up to MetadataMinAge
	// old), which would still call a just-created topic missing; asking
	// for authorized operations makes it issue a fresh request.
	md, err := adm.Metadata(kadm.WithAuthorizedOps(ctx), names...)
	if err != nil {
		if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) {
			return nil, 0, fmt.Errorf("describing topics %s: not authorized: grant DESCRIBE on them to this client's principal (and CREATE, unless they are created beforehand): %w",
				strings.Join(names, ", "), err)
		}
		return nil, 0, fmt.Errorf("describing topics %s: %w", strings.Join(names, ", "), err)
	}
	out := make(map[string]TopicDescription, len(names))
	var existing []string
	for _, n := range names {
		td, ok := md.Topics[n]
		if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			continue
		}
		d := TopicDescription{
			Name:              n,
			Partitions:        int32(len(td.Partitions)),
			ReplicationFactor: int16(td.Partitions.NumReplicas()),
		}
		if td.Err != nil {
			if !kerr.IsRetriable(td.Err) {
				return nil, 0, fmt.Errorf("describing topic %q: %w", n, td.Err)
			}
			// It exists but is settling (e.g. no leader yet): its
			// partitions are unknown.
			d.Partitions, d.ReplicationFactor = -1, -1
		}
		out[n] = d
		existing = append(existing, n)
	}
	if len(existing) == 0 {
		return out, len(md.Brokers), nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
	if err != nil {
		// Without DESCRIBE_CONFIGS the topics still exist; the configs
		// are left nil and CheckTopicConfig says it could not check them.
		return out, len(md.Brokers), nil //nolint:nilerr // configs are optional
	}
	for _, rc := range rcs {
		d, ok := out[rc.Name]
		if !ok || rc.Err != nil {
			continue
		}
		d.Configs = make(map[string]string, len(rc.Configs))
		for _, c := range rc.Configs {
			if c.Value != nil {
				d.Configs[c.Key] = *c.Value
			}
		}
		out[rc.Name] = d
	}
	return out, len(md.Brokers), nil
}

// EnsureTopics creates the topics in specs that do not exist and checks
// those that do. It returns every problem joined: invalid specs, refusals
// from the broker turned into actionable messages that wrap the kerr error
// (errors.Is works, e.g. with kerr.TopicAuthorizationFailed), and existing
// topics that are incompatible (wrapping ErrIncompatibleTopic). Harmless
// drift is logged at warn level on logger (nil discards). It is idempotent.
func EnsureTopics(ctx context.Context, adm *kadm.Client, logger *slog.Logger, specs ...TopicSpec) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := validateSpecs(specs); err != nil {
		return err
	}
	if len(specs) == 0 {
		return nil
	}

	have, brokers, err := describeTopics(ctx, adm, specNames(specs)...)
	if err != nil {
		return err
	}
	recheck, errs := createMissing(ctx, adm, logger, specs, have, brokers)
	if len(recheck) > 0 {
		if err := describeRechecked(ctx, adm, logger, recheck, have); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, checkExisting(logger, specs, have)...)
	return errors.Join(errs...)
}

// validateSpecs returns every invalid spec's problems, joined, each
// naming the spec's index and name.
func validateSpecs(specs []TopicSpec) error {
	var errs []error
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("topic spec %d (%q): %w", i, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// createMissing creates the topics of specs that are not in have (the
// existing ones), logging each creation. It returns the specs whose topic
// someone else created meanwhile (to describe again) and the creation
// errors, in spec order.
func createMissing(ctx context.Context, adm *kadm.Client, logger *slog.Logger, specs []TopicSpec, have map[string]TopicDescription, brokers int) (recheck []TopicSpec, errs []error) {
	for _, s := range specs {
		if _, ok := have[s.Name]; ok {
			continue
		}
		created, err := createTopic(ctx, adm, s, brokers)
		switch {
		case err != nil:
			errs = append(errs, err)
		case created:
			logger.Info("created kafka topic", slog.String("topic", s.Name),
				slog.Int("partitions", int(s.Partitions)), slog.Int("replication_factor", int(s.ReplicationFactor)))
		default: // created concurrently by someone else
			recheck = append(recheck, s)
		}
	}
	return recheck, errs
}

// describeRechecked describes the topics of recheck (created concurrently
// by someone else) into have, and warns about those still not visible,
// whose settings then go unchecked. It returns the describe error, if any,
// after adding what it could.
func describeRechecked(ctx context.Context, adm *kadm.Client, logger *slog.Logger, recheck []TopicSpec, have map[string]TopicDescription) error {
	more, _, err := describeTopics(ctx, adm, specNames(recheck)...)
	maps.Copy(have, more)
	for _, s := range recheck {
		if _, ok := have[s.Name]; !ok {
			logger.Warn("kafka topic exists but is not visible yet; its settings were not checked", slog.String("topic", s.Name))
		}
	}
	return err
}

// checkExisting compares each spec's existing topic (in have) with the
// spec: it logs harmless drift and returns the incompatibilities, in spec
// order.
func checkExisting(logger *slog.Logger, specs []TopicSpec, have map[string]TopicDescription) []error {
	var errs []error
	for _, s := range specs {
		got, ok := have[s.Name]
		if !ok {
			continue
		}
		notes, err := CheckTopicConfig(s, got)
		if err != nil {
			errs = append(errs, err)
		}
		for _, n := range notes {
			logger.Warn("kafka topic differs from its spec", slog.String("topic", s.Name), slog.String("difference", n))
		}
	}
	return errs
}

func specNames(specs []TopicSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// createTopic creates s. It returns false without error when the topic
// already exists, and an actionable error when the broker refuses.
func createTopic(ctx context.Context, adm *kadm.Client, s TopicSpec, brokers int) (bool, error) {
	cfgs := s.configs()
	ptrs := make(map[string]*string, len(cfgs))
	for k, v := range cfgs {
		ptrs[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopic(ctx, s.Partitions, s.ReplicationFactor, ptrs, s.Name)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return false, nil
	}
	detail := ""
	if resp.ErrMessage != "" {
		detail = " (" + resp.ErrMessage + ")"
	}
	create := createCommand(s)
	switch {
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return false, fmt.Errorf("creating topic %q: not authorized%s: grant CREATE on the topic (or the cluster) to this client's principal, or create it beforehand with %d partitions: %s: %w",
			s.Name, detail, s.Partitions, create, err)
	case errors.Is(err, kerr.PolicyViolation):
		return false, fmt.Errorf("creating topic %q: refused by the cluster's topic creation policy%s: change partitions, replication_factor or configs to satisfy it, or have an operator run %s: %w",
			s.Name, detail, create, err)
	case errors.Is(err, kerr.InvalidReplicationFactor):
		return false, fmt.Errorf("creating topic %q: replication factor %d is invalid%s: the cluster has %d brokers; set replication_factor to at most %d: %w",
			s.Name, s.ReplicationFactor, detail, brokers, brokers, err)
	case errors.Is(err, kerr.InvalidPartitions), errors.Is(err, kerr.InvalidConfig), errors.Is(err, kerr.InvalidTopicException):
		return false, fmt.Errorf("creating topic %q: the broker rejected the spec%s: fix the topic's partitions, configs or name: %w", s.Name, detail, err)
	default:
		return false, fmt.Errorf("creating topic %q%s: %w", s.Name, detail, err)
	}
}

// createCommand returns the kafka-topics.sh line an operator can run to
// create s by hand.
func createCommand(s TopicSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka-topics.sh --create --topic %s --partitions %d", s.Name, s.Partitions)
	if s.ReplicationFactor > 0 {
		fmt.Fprintf(&b, " --replication-factor %d", s.ReplicationFactor)
	}
	cfgs := s.configs()
	for _, k := range slices.Sorted(maps.Keys(cfgs)) {
		fmt.Fprintf(&b, " --config %s=%s", k, cfgs[k])
	}
	return b.String()
}
