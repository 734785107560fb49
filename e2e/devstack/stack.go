package devstack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Services are the pipeline's binaries, in start order.
var Services = []string{"loader", "enricher", "poller"}

// Config describes a whole dev stack.
type Config struct {
	Infra InfraConfig
	// BinDir holds the poller, enricher and loader binaries.
	BinDir string
	// ConfigDir holds <service>.yaml, passed to each service with --config;
	// the environment then points the service at this stack.
	ConfigDir string
	// AdminAddrs are the services' admin addresses by name.
	AdminAddrs map[string]string
	// OpenAIKey and OpenAIBaseURL, when OpenAIKey is set, make the poller
	// read a real OpenAI organization instead of the simulator.
	OpenAIKey     string
	OpenAIBaseURL string
	// ExtraEnv adds environment variables per service (tests shorten
	// intervals this way).
	ExtraEnv map[string][]string
	// Out receives the services' output, each line prefixed with its name.
	Out io.Writer
	// BeforeServices, when set, runs after the infrastructure is up and
	// before the services start (tests seed the simulator's backlog here).
	BeforeServices func(*Infra) error
}

// Stack is a running dev stack.
type Stack struct {
	Infra *Infra
	Procs map[string]*Process
	cfg   Config
	log   *slog.Logger
	// unsupervise stops the supervisors started by Supervise.
	unsupervise []func()
}

// DetectionsDatabase holds the findings of the loader's detections with the
// configuration in deploy/config/loader.yaml (database default).
const DetectionsDatabase = "default_detections"

// Database holds openai_audit_logs with the configuration in
// deploy/config/loader.yaml.
const Database = "default"

// SimulatorKey is the admin key the stack's poller presents to the simulator.
const SimulatorKey = "sk-admin-devstack"

// Start brings up the infrastructure, then the services. On an error it
// stops what it had started.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Stack, err error) {
	if cfg.OpenAIKey != "" {
		cfg.Infra.SimulatorAddr = ""
	}
	inf, err := StartInfra(ctx, cfg.Infra, logger)
	if err != nil {
		return nil, err
	}
	s := &Stack{Infra: inf, Procs: map[string]*Process{}, cfg: cfg, log: logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if cfg.BeforeServices != nil {
		if err := cfg.BeforeServices(inf); err != nil {
			return nil, fmt.Errorf("preparing the stack: %w", err)
		}
	}
	for _, name := range Services {
		bin := filepath.Join(cfg.BinDir, name)
		args := []string{"--config", filepath.Join(cfg.ConfigDir, name+".yaml")}
		p, err := StartProcess(name, bin, args, s.Env(name), cfg.Out)
		if err != nil {
			return nil, err
		}
		s.Procs[name] = p
		logger.Info("service started", slog.String("service", name), slog.Int("pid", p.Pid()), slog.String("admin", "http://"+cfg.AdminAddrs[name]))
	}
	return s, nil
}

// Env returns the environment that points service name at this stack. Each
// service is one replica, so it is a static group member (instance id
// devstack-<service>): a restarted process takes its place back at once.
func (s *Stack) Env(name string) []string {
	inf := s.Infra
	prefix := "AUDITPIPE_" + strings.ToUpper(name) + "_"
	env := []string{
		prefix + "KAFKA__BROKERS=" + strings.Join(inf.KafkaBrokers, ","),
		prefix + "ADMIN__ADDR=" + s.cfg.AdminAddrs[name],
		prefix + "LOG__FORMAT=text",
	}
	switch name {
	case "poller":
		base, key := inf.SimulatorURL, SimulatorKey
		if s.cfg.OpenAIKey != "" {
			base, key = s.cfg.OpenAIBaseURL, s.cfg.OpenAIKey
			if base == "" {
				base = "https://api.openai.com/v1"
			}
		}
		env = append(env,
			prefix+"SOURCES__0__BASE_URL="+base,
			prefix+"SOURCES__0__ADMIN_KEY="+key,
			prefix+"INSTANCE_ID=devstack-poller",
		)
	case "enricher":
		g := inf.GeoIP
		env = append(env, prefix+"REGISTRY__URLS="+inf.RegistryURL, prefix+"INSTANCE_ID=devstack-enricher")
		// Real databases named in the environment win over the synthetic
		// ones: AUDITPIPE_ENRICHER_GEO__CITY=/path/GeoLite2-City.mmdb.
		for key, path := range map[string]string{
			"GEO__CITY": g.City, "GEO__ASN": g.ASN, "GEO__ISP": g.ISP,
			"GEO__CONNECTION_TYPE": g.ConnectionType, "GEO__ENTERPRISE": g.Enterprise,
		} {
			if os.Getenv(prefix+key) == "" {
				env = append(env, prefix+key+"="+path)
			}
		}
	case "loader":
		env = append(env,
			prefix+"REGISTRY__URLS="+inf.RegistryURL,
			prefix+"CLICKHOUSE__ADDR="+strings.TrimPrefix(inf.ClickHouse, "http://"),
			prefix+"CONSUMER__INSTANCE_ID=devstack-loader",
		)
	}
	return append(env, s.cfg.ExtraEnv[name]...)
}

// AdminAddr is the admin address (/metrics, /healthz, /readyz) of service
// name.
func (s *Stack) AdminAddr(name string) string { return s.cfg.AdminAddrs[name] }

// Supervise restarts every service whose process exits, with policy, until
// Close.
func (s *Stack) Supervise(policy SupervisePolicy) {
	for _, name := range Services {
		s.unsupervise = append(s.unsupervise, Supervise(context.Background(), s.Procs[name], policy, s.log))
	}
}

// Close stops supervising, stops the services gracefully (each within
// 30 s, then killed), then the infrastructure.
func (s *Stack) Close() {
	for _, stop := range s.unsupervise {
		stop()
	}
	var errs []error
	for i := len(Services) - 1; i >= 0; i-- {
		if p, ok := s.Procs[Services[i]]; ok {
			if err := p.Stop(30 * time.Second); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("stopping services", slog.Any("error", err))
	}
	s.Infra.Close()
}

// Banner is what `make run` prints once everything is up.
func (s *Stack) Banner() string {
	ch := s.Infra.ClickHouse
	q := func(sql string) string {
		return fmt.Sprintf("  curl '%s/?query=%s'", ch, url.QueryEscape(sql))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n================ auditpipe dev stack is up ================\n")
	fmt.Fprintf(&b, "Kafka            %s\n", strings.Join(s.Infra.KafkaBrokers, ","))
	fmt.Fprintf(&b, "Schema Registry  %s\n", s.Infra.RegistryURL)
	fmt.Fprintf(&b, "ClickHouse       %s\n", ch)
	if s.Infra.SimulatorURL != "" {
		fmt.Fprintf(&b, "OpenAI simulator %s (key %s)\n", s.Infra.SimulatorURL, SimulatorKey)
	} else {
		fmt.Fprintf(&b, "OpenAI API       %s (your OPENAI_ADMIN_KEY)\n", s.cfg.OpenAIBaseURL)
	}
	for _, name := range []string{"poller", "enricher", "loader"} {
		fmt.Fprintf(&b, "%-16s http://%s/metrics /healthz /readyz\n", name, s.cfg.AdminAddrs[name])
	}
	fmt.Fprintf(&b, "\nCharts of the audit log (open in a browser; ClickHouse's own dashboard page):\n  %s\n", ChartsURL(ch, Database))
	fmt.Fprintf(&b, "SQL console: %s/play    Grafana dashboards: deploy/grafana (docs/dashboards.md)\n", ch)
	fmt.Fprintf(&b, "\nTry (events appear within seconds):\n")
	fmt.Fprintln(&b, q("SELECT count() FROM openai_audit_logs FINAL"))
	fmt.Fprintln(&b, q("SELECT eventName, count() FROM openai_audit_logs FINAL GROUP BY eventName ORDER BY 2 DESC LIMIT 20 FORMAT PrettyCompact"))
	fmt.Fprintln(&b, q("SELECT srcASCountryCode, srcCity, count() FROM openai_audit_logs FINAL WHERE eventName LIKE 'login.%' GROUP BY 1, 2 ORDER BY 3 DESC FORMAT PrettyCompact"))
	fmt.Fprintln(&b, q("SELECT eventTime, eventName, actorUserEmail, srcIP, srcCity FROM openai_audit_logs FINAL ORDER BY eventTime DESC LIMIT 10 FORMAT PrettyCompact"))
	fmt.Fprintf(&b, "\nThreat detections (ClickHouse runs each rule every minute; the simulator stages attacks; docs/detections.md):\n")
	fmt.Fprintln(&b, q("SELECT detectedAt, rule, severity, entity, eventIDs FROM "+DetectionsDatabase+".openai_audit_detections FINAL ORDER BY detectedAt DESC LIMIT 20 FORMAT PrettyCompact"))
	fmt.Fprintln(&b, q("SELECT rule, severity, count() FROM "+DetectionsDatabase+".openai_audit_detections FINAL GROUP BY rule, severity ORDER BY rule FORMAT PrettyCompact"))
	if sim := strings.TrimSuffix(s.Infra.SimulatorURL, "/v1"); sim != "" {
		fmt.Fprintf(&b, "Stage another attack now (the scenarios: curl %s/_sim/attacks):\n", sim)
		fmt.Fprintf(&b, "  curl -X POST '%s/_sim/attacks?kind=credential_stuffing'\n", sim)
	}
	fmt.Fprintf(&b, "\nCtrl-C stops everything.\n===========================================================\n")
	return b.String()
}

// ChartsURL returns the link that opens the audit charts in ClickHouse's
// dashboard page served by clickhouse (http://host:port): the page reads
// its state from the URL fragment, base64 of a JSON object with host,
// user, queries, params and the search query that lists the charts. The
// queries are left empty so the page runs the search query, which reads the
// (title, query) rows of <database>.auditpipe_dashboards (the migrations
// create it): the charts are kept in one place, and the link stays short.
func ChartsURL(clickhouse, database string) string {
	state := map[string]any{
		"host":          clickhouse,
		"user":          "default",
		"queries":       []any{},
		"params":        map[string]string{"rounding": "60", "seconds": "86400"},
		"search_query_": "SELECT title, query FROM " + database + ".auditpipe_dashboards WHERE dashboard = 'auditpipe'",
		"customized_":   false,
	}
	b, err := json.Marshal(state)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return clickhouse + "/dashboard#" + base64.StdEncoding.EncodeToString(b)
}
