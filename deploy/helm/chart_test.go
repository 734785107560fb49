package helm

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/auditpipe/auditpipe/deploy/internal/podrun"
)

type values = map[string]any

// merge returns a deep merge of vs, later ones winning.
func merge(vs ...values) values {
	out := values{}
	for _, v := range vs {
		for k, x := range v {
			if xm, ok := x.(values); ok {
				if om, ok := out[k].(values); ok {
					out[k] = merge(om, xm)
					continue
				}
			}
			out[k] = x
		}
	}
	return out
}

// The optional features, each as the values that turn it on.
var (
	withSources = values{"poller": values{"sources": []any{
		values{"source_id": "acme", "workspace_id": "ws-acme", "admin_key_secret": values{"name": "openai-acme"}},
		values{"source_id": "globex", "workspace_id": "ws-globex", "poll_interval": "30s", "tags": values{"env": "prod"},
			"admin_key_secret": values{"name": "openai-globex", "key": "key"}},
	}}}
	withSource = values{"poller": values{"sources": []any{
		values{"source_id": "acme", "workspace_id": "ws-acme", "admin_key_secret": values{"name": "openai-acme"}},
	}}}
	withSecrets = values{
		"kafka":             values{"tls": values{"enabled": true, "server_name": "kafka.example"}, "sasl": values{"mechanism": "SCRAM-SHA-512", "username": "auditpipe"}},
		"kafkaSecrets":      values{"tls": values{"name": "kafka-ca", "clientCertificate": true}, "saslPassword": values{"name": "kafka-user", "key": "password"}},
		"registrySecrets":   values{"password": values{"name": "registry-auth"}},
		"registry":          values{"username": "auditpipe"},
		"clickhouse":        values{"tls": values{"enabled": true}, "addr": []any{"clickhouse.example:8443"}, "user": "auditpipe"},
		"clickhouseSecrets": values{"password": values{"name": "clickhouse-auditpipe"}, "tls": values{"name": "clickhouse-ca"}},
	}
	withAutoscaling = values{"autoscaling": values{"enabled": true}}
	withMonitoring  = values{"monitoring": values{"serviceMonitor": values{"enabled": true, "labels": values{"release": "kube-prometheus-stack"}}, "prometheusRule": values{"enabled": true}}}
	withGeoIP       = values{"enricher": values{"geoip": values{
		"volume":    values{"persistentVolumeClaim": values{"claimName": "geoip", "readOnly": true}},
		"databases": values{"city": "GeoLite2-City.mmdb", "asn": "GeoLite2-ASN.mmdb"},
	}}}
	withServiceConfig = values{
		"poller":   values{"config": values{"session_timeout": "45s"}},
		"enricher": values{"config": values{"max_poll_records": 2000, "registry": values{"subject": "audit-enriched-value"}, "source_tags": values{"acme": values{"team": "sec"}}}},
		"loader":   values{"config": values{"batch": values{"max_rows": 50000}, "kafka": values{"linger": "5ms"}, "registry": values{"max_schemas": 64}}},
	}
	withoutMigrations = values{"migrations": values{"enabled": false}}
)

// scenarios render the defaults (with the one source the chart requires)
// and each optional feature on its own, then everything at once.
var scenarios = []struct {
	name   string
	values values
}{
	{name: "defaults", values: withSource},
	{name: "sources", values: withSources},
	{name: "secrets and TLS", values: merge(withSources, withSecrets)},
	{name: "autoscaling", values: merge(withSource, withAutoscaling)},
	{name: "autoscaling with SASL and TLS", values: merge(withSource, withAutoscaling, withSecrets)},
	{name: "monitoring", values: merge(withSource, withMonitoring)},
	{name: "geoip", values: merge(withSource, withGeoIP)},
	{name: "service config", values: merge(withSource, withServiceConfig)},
	{name: "migrations off", values: merge(withSource, withoutMigrations)},
	{name: "everything", values: merge(withSources, withSecrets, withAutoscaling, withMonitoring, withGeoIP, withServiceConfig)},
}

func TestChart(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			m := render(t, sc.values)
			t.Run("workloads", func(t *testing.T) { checkWorkloads(t, m, sc.values) })
			t.Run("services and PDBs", func(t *testing.T) { checkServicesAndPDBs(t, m) })
			t.Run("migrations", func(t *testing.T) { checkMigrations(t, m, sc.values) })
			t.Run("autoscaling", func(t *testing.T) { checkAutoscaling(t, m, sc.values) })
			t.Run("monitoring", func(t *testing.T) { checkMonitoring(t, m, sc.values) })
			t.Run("service configuration", func(t *testing.T) { checkServiceConfigs(t, m, sc.values) })
			assert.Contains(t, m.Notes, "auditpipe 0.1.0 is installed as release prod")
		})
	}
}

// enabled reads a boolean at path in v (false when absent).
func enabled(v values, path ...string) bool {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(values)
		if !ok {
			return false
		}
		cur = m[p]
	}
	b, _ := cur.(bool)
	return b
}

var components = map[string]string{"poller": "Deployment", "enricher": "StatefulSet", "loader": "Deployment"}

func checkWorkloads(t *testing.T, m *manifests, v values) {
	ws := m.workloads()
	require.Len(t, ws, 3)
	for comp, kind := range components {
		w, ok := ws[fullName(comp)]
		require.True(t, ok, "%s is rendered", comp)
		assert.Equal(t, kind, w.Kind, comp)
		sel, err := metav1LabelSelector(w)
		require.NoError(t, err)
		assert.True(t, sel.Matches(labels.Set(w.Pod.Labels)), "%s: the selector matches its pods", comp)
		autoscaled := comp != "poller" && enabled(v, "autoscaling", "enabled")
		assert.Equal(t, autoscaled, w.Replicas == nil, "%s: replicas are left to KEDA exactly when it scales the workload", comp)
		checkPod(t, comp, w.Pod.Spec, m)
	}
	sts := m.StatefulSets[fullName("enricher")]
	assert.Equal(t, fullName("enricher"), sts.Spec.ServiceName)
	assert.Contains(t, m.Services, sts.Spec.ServiceName, "the StatefulSet's governing Service exists")
	env := envOf(sts.Spec.Template.Spec.Containers[0])
	assert.Equal(t, "$(POD_NAME)", env["AUDITPIPE_ENRICHER_TRANSACTIONAL_ID"], "the transactional id is the stable pod name")
	// Every replica is a static group member named after its pod.
	for comp, key := range map[string]string{"poller": "AUDITPIPE_POLLER_INSTANCE_ID", "enricher": "AUDITPIPE_ENRICHER_INSTANCE_ID",
		"loader": "AUDITPIPE_LOADER_CONSUMER__INSTANCE_ID"} {
		assert.Equal(t, "$(POD_NAME)", envOf(ws[fullName(comp)].Pod.Spec.Containers[0])[key], "%s: the pod name is the group instance id", comp)
	}
}

func metav1LabelSelector(w workload) (labels.Selector, error) {
	return metav1SelectorAsSelector(w.Selector)
}

// checkPod checks what every service pod must have: the restricted
// security context, probes on the admin port, resources, and volumes that
// exist.
func checkPod(t *testing.T, comp string, pod corev1.PodSpec, m *manifests) {
	t.Helper()
	require.NotNil(t, pod.AutomountServiceAccountToken)
	assert.False(t, *pod.AutomountServiceAccountToken, "%s: no API token", comp)
	psc := pod.SecurityContext
	require.NotNil(t, psc)
	assert.True(t, *psc.RunAsNonRoot, comp)
	assert.EqualValues(t, 65532, *psc.RunAsUser, comp)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type, comp)
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
		if v.ConfigMap != nil {
			assert.Contains(t, m.ConfigMaps, v.ConfigMap.Name, "%s: volume %s names a rendered ConfigMap", comp, v.Name)
		}
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		require.NotNil(t, sc, comp)
		assert.False(t, *sc.AllowPrivilegeEscalation, comp)
		assert.True(t, *sc.ReadOnlyRootFilesystem, comp)
		assert.True(t, *sc.RunAsNonRoot, comp)
		assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, comp)
		assert.NotEmpty(t, c.Resources.Requests.Cpu().String(), comp)
		assert.False(t, c.Resources.Limits.Memory().IsZero(), "%s: a memory limit", comp)
		assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: a memory request", comp)
		for _, vm := range c.VolumeMounts {
			assert.Contains(t, vols, vm.Name, "%s: mount %s names a volume of the pod", comp, vm.MountPath)
		}
		if c.LivenessProbe == nil {
			continue // the migrations Job's containers
		}
		require.Len(t, c.Ports, 1, comp)
		assert.Equal(t, "admin", c.Ports[0].Name)
		for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
			require.NotNil(t, probe)
			assert.Equal(t, path, probe.HTTPGet.Path, comp)
			assert.Equal(t, intstr.FromString("admin"), probe.HTTPGet.Port, comp)
		}
	}
}

func envOf(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func checkServicesAndPDBs(t *testing.T, m *manifests) {
	for name, w := range m.workloads() {
		svc, ok := m.Services[name]
		require.True(t, ok, "%s has a Service", name)
		assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.Pod.Labels)), "%s: the Service selects the pods", name)
		require.Len(t, svc.Spec.Ports, 1)
		assert.Equal(t, intstr.FromString("admin"), svc.Spec.Ports[0].TargetPort)
		assert.Equal(t, w.Pod.Spec.Containers[0].Ports[0].ContainerPort, svc.Spec.Ports[0].Port)
		pdb, ok := m.PDBs[name]
		require.True(t, ok, "%s has a PodDisruptionBudget", name)
		sel, err := metav1SelectorAsSelector(pdb.Spec.Selector)
		require.NoError(t, err)
		assert.True(t, sel.Matches(labels.Set(w.Pod.Labels)), "%s: the PDB covers the pods", name)
		assert.Equal(t, intstr.FromInt32(1), *pdb.Spec.MaxUnavailable)
	}
}

func checkMigrations(t *testing.T, m *manifests, v values) {
	on := !enabled(v, "migrations", "enabled") && v["migrations"] == nil || enabled(v, "migrations", "enabled")
	job, ok := m.Jobs[fullName("migrations")]
	assert.Equal(t, on, ok, "the migrations Job is rendered when enabled")
	loaderCfg := configOf(t, m.ConfigMaps[fullName("loader")])
	enricherCfg := configOf(t, m.ConfigMaps[fullName("enricher")])
	assert.Equal(t, !on, loaderCfg["clickhouse"].(values)["migrate"], "running loaders migrate only without the Job")
	assert.Equal(t, !on, enricherCfg["registry"].(values)["register"], "running enrichers register only without the Job")
	if !on {
		return
	}
	cm, ok := m.ConfigMaps[fullName("migrations")]
	require.True(t, ok, "the Job's own ConfigMap")
	for _, meta := range []map[string]string{job.Annotations, cm.Annotations} {
		assert.Equal(t, "pre-install,pre-upgrade", meta["helm.sh/hook"])
	}
	assert.Less(t, cm.Annotations["helm.sh/hook-weight"], job.Annotations["helm.sh/hook-weight"], "the ConfigMap exists before the Job")
	pod := job.Spec.Template.Spec
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	require.NotNil(t, job.Spec.ActiveDeadlineSeconds, "the Job is bounded in time")
	want := map[string]string{"migrate": "AUDITPIPE_LOADER_MIGRATE_ONLY", "register": "AUDITPIPE_ENRICHER_REGISTER_ONLY"}
	require.Len(t, pod.Containers, 2)
	for _, c := range pod.Containers {
		assert.Equal(t, "true", envOf(c)[want[c.Name]], "container %s", c.Name)
	}
	checkPod(t, "migrations", pod, m)
}

// configOf decodes the service configuration a ConfigMap holds.
func configOf(t *testing.T, cm *corev1.ConfigMap) values {
	t.Helper()
	require.NotNil(t, cm)
	var out values
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &out))
	return out
}

func checkAutoscaling(t *testing.T, m *manifests, v values) {
	if !enabled(v, "autoscaling", "enabled") {
		assert.Empty(t, m.ScaledObjects)
		assert.Empty(t, m.TriggerAuths)
		return
	}
	partitions := map[string]int32{"enricher": 12, "loader": 6} // topics.raw and topics.enriched
	topics := map[string]string{"enricher": "openai-audit-raw", "loader": "openai-audit-enriched"}
	require.Len(t, m.ScaledObjects, 2)
	for comp, parts := range partitions {
		so, ok := m.ScaledObjects[fullName(comp)]
		require.True(t, ok, comp)
		require.NoError(t, so.check(), comp)
		kind, name := so.target()
		assert.Equal(t, components[comp], kind)
		assert.Contains(t, m.workloads(), name, "%s: scaleTargetRef names a rendered workload", comp)
		lo, hi := so.replicas()
		assert.LessOrEqual(t, hi, int(parts), "%s: never more replicas than partitions", comp)
		assert.LessOrEqual(t, lo, hi)
		tr := so.triggers()[0]
		assert.Equal(t, topics[comp], tr.Metadata["topic"])
		assert.Equal(t, "auditpipe-"+comp, tr.Metadata["consumerGroup"])
		if tr.AuthRef != "" {
			ta, ok := m.TriggerAuths[tr.AuthRef]
			require.True(t, ok, "%s: authenticationRef names a rendered TriggerAuthentication", comp)
			require.NoError(t, ta.check())
			for _, r := range ta.refs() {
				if s, ok := m.Secrets[r.Name]; ok {
					assert.Contains(t, s.StringData, r.Key, "parameter %s: the chart's Secret has the key", r.Parameter)
				}
			}
		}
	}
	if _, secured := v["kafkaSecrets"]; secured {
		require.Len(t, m.TriggerAuths, 1, "SASL/TLS: a TriggerAuthentication")
	}
}

func checkMonitoring(t *testing.T, m *manifests, v values) {
	if !enabled(v, "monitoring", "serviceMonitor", "enabled") {
		assert.Empty(t, m.ServiceMonitors)
	} else {
		require.Len(t, m.ServiceMonitors, 1)
		for _, sm := range m.ServiceMonitors {
			sel, err := metav1SelectorAsSelector(&sm.Spec.Selector)
			require.NoError(t, err)
			matched := 0
			for _, svc := range m.Services {
				if sel.Matches(labels.Set(svc.Labels)) {
					matched++
					assert.Equal(t, "admin", svc.Spec.Ports[0].Name)
				}
			}
			assert.Equal(t, 3, matched, "the ServiceMonitor selects the three services")
			require.Len(t, sm.Spec.Endpoints, 1)
			assert.Equal(t, "admin", sm.Spec.Endpoints[0].Port)
			assert.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
			assert.Equal(t, "kube-prometheus-stack", sm.Labels["release"])
		}
	}
	if !enabled(v, "monitoring", "prometheusRule", "enabled") {
		assert.Empty(t, m.PrometheusRules)
		return
	}
	require.Len(t, m.PrometheusRules, 1)
	want := alertRules(t)
	for _, pr := range m.PrometheusRules {
		require.Len(t, pr.Spec.Groups, len(want.Groups))
		for i, g := range pr.Spec.Groups {
			assert.Equal(t, want.Groups[i].Name, g.Name)
			require.Len(t, g.Rules, len(want.Groups[i].Rules))
			for j, r := range g.Rules {
				w := want.Groups[i].Rules[j]
				assert.Equal(t, w.Alert, r.Alert, "the PrometheusRule holds files/alerts.yaml")
				assert.Equal(t, w.Expr, r.Expr.String())
				assert.NotEmpty(t, r.Annotations["summary"], r.Alert)
				assert.NotEmpty(t, r.Labels["severity"], r.Alert)
			}
		}
	}
}

// fakeSecrets are the values standing in for the existing Secrets the
// values name.
func fakeSecrets(t *testing.T) map[string]map[string]string {
	t.Helper()
	ca, cert, key, err := testPKI()
	require.NoError(t, err)
	tls := map[string]string{"ca.crt": ca, "tls.crt": cert, "tls.key": key}
	return map[string]map[string]string{
		"openai-acme":          {"admin-key": "sk-admin-acme"},
		"openai-globex":        {"key": "sk-admin-globex"},
		"kafka-ca":             tls,
		"kafka-user":           {"password": "kafka-secret"},
		"registry-auth":        {"password": "registry-secret"},
		"clickhouse-auditpipe": {"password": "clickhouse-secret"},
		"clickhouse-ca":        tls,
	}
}

// checkServiceConfigs runs every container's binary with --check-config on
// what the chart hands it: arguments, environment and mounted files.
func checkServiceConfigs(t *testing.T, m *manifests, v values) {
	secrets := fakeSecrets(t)
	pods := map[string]corev1.PodSpec{}
	for name, w := range m.workloads() {
		pods[name] = w.Pod.Spec
	}
	for name, j := range m.Jobs {
		pods[name] = j.Spec.Template.Spec
	}
	cms := map[string]map[string]string{}
	for n, cm := range m.ConfigMaps {
		cms[n] = cm.Data
	}
	geoip := t.TempDir()
	for podName, pod := range pods {
		for _, c := range pod.Containers {
			service := map[string]string{"migrate": "loader", "register": "enricher"}[c.Name]
			if service == "" {
				service = c.Name
			}
			root := t.TempDir()
			inv, err := podrun.Container(pod, c.Name, root, podrun.Cluster{
				ConfigMaps: cms, Secrets: secrets, Volumes: map[string]string{"geoip": geoip},
				PodName: podName + "-0", Namespace: namespace,
			})
			require.NoError(t, err, "%s/%s", podName, c.Name)
			out, err := bins.CheckConfig(context.Background(), service, inv)
			require.NoError(t, err, "%s/%s", podName, c.Name)
			for _, kv := range secrets {
				for _, secret := range kv {
					assert.NotContains(t, out, secret, "%s/%s: no secret value is printed", podName, c.Name)
				}
			}
			if c.Name == "enricher" {
				assert.Contains(t, out, "transactional_id: "+podName+"-0", "the pod name is the transactional id")
			}
			for _, want := range passedThrough[service] {
				if has(v, service, "config") {
					assert.Contains(t, out, want, "%s/%s: the service's own keys pass through", podName, c.Name)
				}
			}
			if service == "poller" && has(v, "poller", "sources") {
				assert.Contains(t, out, "source_id: acme")
				assert.Contains(t, out, "admin_key: '[REDACTED]'")
			}
		}
	}
}

// passedThrough are what withServiceConfig sets, as --check-config prints it.
var passedThrough = map[string][]string{
	"poller":   {"session_timeout: 45s"},
	"enricher": {"subject: audit-enriched-value", "max_poll_records: 2000", "team: sec"},
	"loader":   {"max_rows: 50000", "linger: 5ms", "max_schemas: 64"},
}

// has reports whether v has a value at path.
func has(v values, path ...string) bool {
	var cur any = v
	for _, p := range path {
		m, ok := cur.(values)
		if !ok {
			return false
		}
		if cur, ok = m[p]; !ok {
			return false
		}
	}
	return true
}
