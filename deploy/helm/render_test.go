package helm

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "auditpipe"
	release   = "prod"
	namespace = "audit"
)

// manifests are the objects of one rendering, decoded strictly.
type manifests struct {
	ConfigMaps      map[string]*corev1.ConfigMap
	Secrets         map[string]*corev1.Secret
	Services        map[string]*corev1.Service
	Deployments     map[string]*appsv1.Deployment
	StatefulSets    map[string]*appsv1.StatefulSet
	Jobs            map[string]*batchv1.Job
	PDBs            map[string]*policyv1.PodDisruptionBudget
	ScaledObjects   map[string]*scaledObject
	TriggerAuths    map[string]*triggerAuthentication
	ServiceMonitors map[string]*monitoringv1.ServiceMonitor
	PrometheusRules map[string]*monitoringv1.PrometheusRule
	Notes           string
	count           int
}

// renderChart renders the chart with values over its defaults, as
// `helm template` does (schema validation included), and returns the
// rendered files by name.
func renderChart(t *testing.T, values map[string]any) (map[string]string, error) {
	t.Helper()
	return Render(chartDir, release, namespace, values)
}

// render renders and strictly decodes every manifest; an unknown field, a
// wrong type or an unknown kind fails the test.
func render(t *testing.T, values map[string]any) *manifests {
	t.Helper()
	files, err := renderChart(t, values)
	require.NoError(t, err)
	m := &manifests{
		ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{}, Services: map[string]*corev1.Service{},
		Deployments: map[string]*appsv1.Deployment{}, StatefulSets: map[string]*appsv1.StatefulSet{}, Jobs: map[string]*batchv1.Job{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, ScaledObjects: map[string]*scaledObject{}, TriggerAuths: map[string]*triggerAuthentication{},
		ServiceMonitors: map[string]*monitoringv1.ServiceMonitor{}, PrometheusRules: map[string]*monitoringv1.PrometheusRule{},
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			m.Notes = files[name]
			continue
		case !strings.HasSuffix(name, ".yaml"):
			continue
		}
		for i, doc := range docSep.Split(files[name], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			require.NoError(t, m.add([]byte(doc)), "%s, document %d:\n%s", name, i, doc)
		}
	}
	return m
}

// add decodes one manifest into its API type.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	var name string
	decode := func(into any, meta *metav1.ObjectMeta) error {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return fmt.Errorf("%s: %w", gvk, err)
		}
		name = meta.Name
		if name == "" {
			return fmt.Errorf("%s without metadata.name", gvk)
		}
		return nil
	}
	var err error
	switch gvk {
	case "v1/ConfigMap":
		o := &corev1.ConfigMap{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.ConfigMaps, name, o)
		}
	case "v1/Secret":
		o := &corev1.Secret{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.Secrets, name, o)
		}
	case "v1/Service":
		o := &corev1.Service{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.Services, name, o)
		}
	case "apps/v1/Deployment":
		o := &appsv1.Deployment{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.Deployments, name, o)
		}
	case "apps/v1/StatefulSet":
		o := &appsv1.StatefulSet{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.StatefulSets, name, o)
		}
	case "batch/v1/Job":
		o := &batchv1.Job{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.Jobs, name, o)
		}
	case "policy/v1/PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.PDBs, name, o)
		}
	case "keda.sh/v1alpha1/ScaledObject", "keda.sh/v1alpha1/TriggerAuthentication":
		// Their schema is KEDA's CRDs' to check (keda_test.go).
		u := map[string]any{}
		if err = yaml.Unmarshal(doc, &u); err != nil {
			return fmt.Errorf("%s: %w", gvk, err)
		}
		if name, _, _ = unstructured.NestedString(u, "metadata", "name"); name == "" {
			return fmt.Errorf("%s without metadata.name", gvk)
		}
		if tm.Kind == "ScaledObject" {
			err = put(m.ScaledObjects, name, &scaledObject{obj: u})
		} else {
			err = put(m.TriggerAuths, name, &triggerAuthentication{obj: u})
		}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		o := &monitoringv1.ServiceMonitor{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.ServiceMonitors, name, o)
		}
	case "monitoring.coreos.com/v1/PrometheusRule":
		o := &monitoringv1.PrometheusRule{}
		if err = decode(o, &o.ObjectMeta); err == nil {
			err = put(m.PrometheusRules, name, o)
		}
	default:
		return fmt.Errorf("unexpected kind %s: add it to the test's decoder", gvk)
	}
	if err == nil {
		m.count++
	}
	return err
}

func put[T any](into map[string]T, name string, o T) error {
	if _, dup := into[name]; dup {
		return fmt.Errorf("two objects of one kind named %q", name)
	}
	into[name] = o
	return nil
}

// workload is a rendered pod template with its owner's name and kind.
type workload struct {
	Kind     string
	Name     string
	Replicas *int32
	Selector *metav1.LabelSelector
	Pod      corev1.PodTemplateSpec
}

// workloads returns the Deployments and StatefulSets (not hook Jobs).
func (m *manifests) workloads() map[string]workload {
	out := map[string]workload{}
	for n, d := range m.Deployments {
		out[n] = workload{Kind: "Deployment", Name: n, Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Pod: d.Spec.Template}
	}
	for n, s := range m.StatefulSets {
		out[n] = workload{Kind: "StatefulSet", Name: n, Replicas: s.Spec.Replicas, Selector: s.Spec.Selector, Pod: s.Spec.Template}
	}
	return out
}

// fullName is the name of a component's objects in the test release.
func fullName(component string) string { return release + "-auditpipe-" + component }
