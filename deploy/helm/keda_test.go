package helm

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// KEDA's objects are not decoded into hand-written types: `make
// deploy-test` (deploytest.TestChartOnKubeAPIServer) creates them on a real
// API server against KEDA's own CRDs (keda.sh/v1alpha1, from the
// kedacore/keda module) with strict field validation. Here they are read as
// unstructured objects for what those CRDs cannot check: the Kafka scaler's
// metadata keys and authentication parameters, free-form strings there.

type scaledObject struct{ obj map[string]any }

type triggerAuthentication struct{ obj map[string]any }

// kafkaRequired are the Kafka trigger's metadata keys the chart must set.
var kafkaRequired = []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}

// kafkaAuthParameters are the parameters KEDA's Kafka scaler reads from a
// TriggerAuthentication.
var kafkaAuthParameters = map[string]bool{"sasl": true, "username": true, "password": true, "tls": true, "ca": true, "cert": true, "key": true, "keyPassword": true}

// target is the workload the ScaledObject scales.
func (s *scaledObject) target() (kind, name string) {
	kind, _, _ = unstructured.NestedString(s.obj, "spec", "scaleTargetRef", "kind")
	name, _, _ = unstructured.NestedString(s.obj, "spec", "scaleTargetRef", "name")
	return kind, name
}

// replicas are minReplicaCount and maxReplicaCount (-1 when unset).
func (s *scaledObject) replicas() (lo, hi int) {
	count := func(key string) int {
		v, ok, _ := unstructured.NestedFieldNoCopy(s.obj, "spec", key)
		if f, isNum := v.(float64); ok && isNum {
			return int(f)
		}
		return -1
	}
	return count("minReplicaCount"), count("maxReplicaCount")
}

// trigger is the i-th trigger: its type, metadata and authenticationRef name.
type trigger struct {
	Type     string
	Metadata map[string]string
	AuthRef  string
}

func (s *scaledObject) triggers() []trigger {
	list, _, _ := unstructured.NestedSlice(s.obj, "spec", "triggers")
	var out []trigger
	for _, x := range list {
		m, _ := x.(map[string]any)
		tr := trigger{Metadata: map[string]string{}}
		tr.Type, _, _ = unstructured.NestedString(m, "type")
		md, _, _ := unstructured.NestedStringMap(m, "metadata")
		for k, v := range md {
			tr.Metadata[k] = v
		}
		tr.AuthRef, _, _ = unstructured.NestedString(m, "authenticationRef", "name")
		out = append(out, tr)
	}
	return out
}

// check reports every Kafka trigger setting the chart must give.
func (s *scaledObject) check() error {
	var errs []error
	if _, name := s.target(); name == "" {
		errs = append(errs, errors.New("spec.scaleTargetRef.name: required"))
	}
	if lo, hi := s.replicas(); lo < 0 || hi < 0 {
		errs = append(errs, errors.New("spec.minReplicaCount and spec.maxReplicaCount: set them"))
	}
	trs := s.triggers()
	if len(trs) == 0 {
		errs = append(errs, errors.New("spec.triggers: at least one"))
	}
	for i, tr := range trs {
		if tr.Type != "kafka" {
			errs = append(errs, fmt.Errorf("spec.triggers[%d].type: %q, want kafka", i, tr.Type))
		}
		for _, k := range kafkaRequired {
			if tr.Metadata[k] == "" {
				errs = append(errs, fmt.Errorf("spec.triggers[%d].metadata.%s: required", i, k))
			}
		}
	}
	return errors.Join(errs...)
}

// secretTargetRef is one parameter a TriggerAuthentication reads from a
// Secret.
type secretTargetRef struct{ Parameter, Name, Key string }

func (a *triggerAuthentication) refs() []secretTargetRef {
	list, _, _ := unstructured.NestedSlice(a.obj, "spec", "secretTargetRef")
	var out []secretTargetRef
	for _, x := range list {
		m, _ := x.(map[string]any)
		var r secretTargetRef
		r.Parameter, _, _ = unstructured.NestedString(m, "parameter")
		r.Name, _, _ = unstructured.NestedString(m, "name")
		r.Key, _, _ = unstructured.NestedString(m, "key")
		out = append(out, r)
	}
	return out
}

// check reports unknown Kafka scaler parameters and an empty list.
func (a *triggerAuthentication) check() error {
	var errs []error
	refs := a.refs()
	if len(refs) == 0 {
		errs = append(errs, errors.New("spec.secretTargetRef: empty"))
	}
	for i, r := range refs {
		if !kafkaAuthParameters[r.Parameter] {
			errs = append(errs, fmt.Errorf("spec.secretTargetRef[%d].parameter: %q is not a Kafka scaler parameter", i, r.Parameter))
		}
	}
	return errors.Join(errs...)
}
