//go:build deploytest

package deploytest

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/auditpipe/auditpipe/deploy/helm"
)

const helmNamespace = "audit"

// The values of each step: the defaults with one source, then the optional
// features turned on in two upgrades.
var (
	oneSource = values{"poller": values{"sources": []any{
		values{"source_id": "acme", "workspace_id": "ws-acme", "admin_key_secret": values{"name": "openai-acme"}},
	}}}
	scaledAndMonitored = values{
		"autoscaling": values{"enabled": true},
		"monitoring":  values{"serviceMonitor": values{"enabled": true, "labels": values{"release": "kube-prometheus-stack"}}, "prometheusRule": values{"enabled": true}},
	}
	securedAndClustered = values{
		"kafka":             values{"tls": values{"enabled": true, "server_name": "kafka.example"}, "sasl": values{"mechanism": "SCRAM-SHA-512", "username": "auditpipe"}},
		"kafkaSecrets":      values{"tls": values{"name": "kafka-ca", "clientCertificate": true}, "saslPassword": values{"name": "kafka-user"}},
		"registry":          values{"urls": []any{"https://registry.example:8081"}, "username": "auditpipe"},
		"registrySecrets":   values{"password": values{"name": "registry-auth"}},
		"clickhouse":        values{"addr": []any{"clickhouse.example:8443"}, "tls": values{"enabled": true}, "user": "auditpipe", "cluster": "audit"},
		"clickhouseSecrets": values{"password": values{"name": "clickhouse-auditpipe"}, "tls": values{"name": "clickhouse-ca"}},
		"enricher": values{"geoip": values{
			"volume":    values{"persistentVolumeClaim": values{"claimName": "geoip", "readOnly": true}},
			"databases": values{"city": "GeoLite2-City.mmdb", "asn": "GeoLite2-ASN.mmdb"},
		}},
	}
)

// TestChartOnKubeAPIServer installs the chart with Helm (the Go library of
// helm v4) on a real kube-apiserver and etcd, in a namespace that enforces
// PodSecurity restricted, with the real KEDA and Prometheus Operator CRDs;
// upgrades it twice, turning on KEDA autoscaling, the ServiceMonitor and the
// PrometheusRule, then TLS, SASL, cluster mode and GeoIP; and uninstalls it.
// Helm applies every object server-side with strict field validation, so
// the API server and the CRDs' schemas check every field; each pod template
// is also created as a pod (dry run) under the namespace's enforcement, and
// no step may draw a warning. The server has no kubelet and no controllers:
// the test completes the migrations Job that Helm waits for.
func TestChartOnKubeAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(t)
	installCRDs(t, c)
	cs := c.clientset(t)
	createNamespace(t, ctx, cs)
	go completeJobs(ctx, cs)
	cfg := helmConfig(t, c)
	chart, err := loader.Load(chartDir)
	require.NoError(t, err)

	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace = "prod", helmNamespace
	install.WaitStrategy, install.Timeout = kube.HookOnlyStrategy, 3*time.Minute
	rel, err := install.RunWithContext(ctx, chart, merge(oneSource))
	require.NoError(t, err, "helm install")
	checkRelease(t, ctx, c, rel)

	for i, vals := range []values{merge(oneSource, scaledAndMonitored), merge(oneSource, scaledAndMonitored, securedAndClustered)} {
		up := action.NewUpgrade(cfg)
		up.Namespace, up.WaitStrategy, up.Timeout = helmNamespace, kube.HookOnlyStrategy, 3*time.Minute
		rel, err := up.RunWithContext(ctx, "prod", chart, vals)
		require.NoError(t, err, "helm upgrade %d", i+1)
		r := checkRelease(t, ctx, c, rel)
		assert.Equal(t, i+2, r.Version)
		for _, kind := range []string{"kind: ScaledObject", "kind: ServiceMonitor", "kind: PrometheusRule"} {
			assert.Contains(t, r.Manifest, kind, "upgrade %d", i+1)
		}
		if i == 1 {
			assert.Contains(t, r.Manifest, "kind: TriggerAuthentication", "SASL and TLS: KEDA authenticates to Kafka")
			assert.Contains(t, r.Manifest, "cluster: audit")
		}
	}

	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = kube.HookOnlyStrategy, 2*time.Minute
	_, err = un.Run("prod")
	require.NoError(t, err, "helm uninstall")
	checkUninstalled(t, ctx, cs)
}

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

// createNamespace creates the release's namespace, enforcing (and warning
// and auditing) PodSecurity restricted at the latest version, with its
// default service account.
func createNamespace(t *testing.T, ctx context.Context, cs *kubernetes.Clientset) {
	t.Helper()
	labels := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		labels["pod-security.kubernetes.io/"+mode] = "restricted"
		labels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: helmNamespace, Labels: labels}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// What the controller manager's service account controller would create;
	// pod admission looks it up.
	_, err = cs.CoreV1().ServiceAccounts(helmNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// completeJobs stands in for the Job controller and the kubelet: every Job
// of the namespace is marked as run to completion, so Helm's wait for the
// pre-install and pre-upgrade hook ends (the Job's pod runs for real in
// TestChartRunsInPodmanKubePlay).
func completeJobs(ctx context.Context, cs *kubernetes.Clientset) {
	for ctx.Err() == nil {
		jobs, err := cs.BatchV1().Jobs(helmNamespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range jobs.Items {
				if j := &jobs.Items[i]; j.Status.CompletionTime == nil {
					now := metav1.Now()
					j.Status.StartTime, j.Status.CompletionTime, j.Status.Succeeded = &now, &now, 1
					j.Status.Conditions = []batchv1.JobCondition{
						{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
						{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, LastProbeTime: now},
					}
					_, _ = cs.BatchV1().Jobs(helmNamespace).UpdateStatus(ctx, j, metav1.UpdateOptions{})
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// helmConfig is Helm's action configuration for the cluster, its release
// records stored as Secrets (Helm's default), warnings recorded.
func helmConfig(t *testing.T, c *cluster) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.kubeconfig
	ns := helmNamespace
	flags.Namespace = &ns
	flags.WrapConfigFn = func(rc *rest.Config) *rest.Config {
		rc.WarningHandler = c.warnings
		return rc
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).Handler())
	require.NoError(t, cfg.Init(flags, helmNamespace, "secret"))
	return cfg
}

// checkRelease checks a release Helm reports deployed: no warning from the
// API server (PodSecurity warns about a template that breaks restricted),
// and every pod template of the release and its hooks admitted as a pod.
func checkRelease(t *testing.T, ctx context.Context, c *cluster, rel any) *releasev1.Release {
	t.Helper()
	r, ok := rel.(*releasev1.Release)
	require.True(t, ok, "a helm v1 release, got %T", rel)
	require.Equal(t, "deployed", string(r.Info.Status))
	docs := helm.Documents(map[string]string{"manifest.yaml": r.Manifest})
	for _, h := range r.Hooks {
		docs = append(docs, helm.Documents(map[string]string{"hook.yaml": h.Manifest})...)
	}
	cs := c.clientset(t)
	admitted := 0
	for _, doc := range docs {
		tmpl, ok := podTemplate(t, doc)
		if !ok {
			continue
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-", Labels: tmpl.Labels}, Spec: tmpl.Spec}
		_, err := cs.CoreV1().Pods(helmNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		assert.NoError(t, err, "the pod template of\n%s", doc)
		admitted++
	}
	assert.Equal(t, 4, admitted, "poller, enricher, loader and the migrations Job")
	for _, w := range c.warnings.take() {
		t.Errorf("the API server warned: %s", w)
	}
	return r
}

// podTemplate returns the pod template of a Deployment, StatefulSet or Job.
func podTemplate(t *testing.T, doc string) (corev1.PodTemplateSpec, bool) {
	t.Helper()
	var tm metav1.TypeMeta
	require.NoError(t, yaml.Unmarshal([]byte(doc), &tm))
	switch tm.Kind {
	case "Deployment":
		var o appsv1.Deployment
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o))
		return o.Spec.Template, true
	case "StatefulSet":
		var o appsv1.StatefulSet
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o))
		return o.Spec.Template, true
	case "Job":
		var o batchv1.Job
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o))
		return o.Spec.Template, true
	}
	return corev1.PodTemplateSpec{}, false
}

// checkUninstalled: nothing of the release is left but its hook (the
// migrations Job and its ConfigMap stay, as Helm leaves hooks that
// before-hook-creation deletes only at the next install).
func checkUninstalled(t *testing.T, ctx context.Context, cs *kubernetes.Clientset) {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=prod"}
	deps, err := cs.AppsV1().Deployments(helmNamespace).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, deps.Items)
	sts, err := cs.AppsV1().StatefulSets(helmNamespace).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, sts.Items)
	svcs, err := cs.CoreV1().Services(helmNamespace).List(ctx, sel)
	require.NoError(t, err)
	assert.Empty(t, svcs.Items)
	cms, err := cs.CoreV1().ConfigMaps(helmNamespace).List(ctx, sel)
	require.NoError(t, err)
	for _, cm := range cms.Items {
		assert.True(t, strings.HasSuffix(cm.Name, "-migrations"), "ConfigMap %s is left", cm.Name)
	}
	secrets, err := cs.CoreV1().Secrets(helmNamespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	require.NoError(t, err)
	assert.Empty(t, secrets.Items, "Helm's release records are gone")
}
