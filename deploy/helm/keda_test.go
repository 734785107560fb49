package helm

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The KEDA types are not imported (the KEDA module brings a large
// dependency tree); these hold the fields of keda.sh/v1alpha1 the chart uses,
// and strict decoding rejects any other field.

type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef  *scaleTarget    `json:"scaleTargetRef"`
	PollingInterval *int32          `json:"pollingInterval,omitempty"`
	CooldownPeriod  *int32          `json:"cooldownPeriod,omitempty"`
	MinReplicaCount *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount *int32          `json:"maxReplicaCount,omitempty"`
	Triggers        []scaleTriggers `json:"triggers"`
}

type scaleTarget struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Name       string `json:"name"`
}

type scaleTriggers struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *authRef          `json:"authenticationRef,omitempty"`
}

type authRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

type triggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretTargetRef []secretTargetRef `json:"secretTargetRef"`
	} `json:"spec"`
}

type secretTargetRef struct {
	Parameter string `json:"parameter"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// kafkaRequired are the Kafka trigger's metadata keys the chart must set.
var kafkaRequired = []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold"}

// kafkaAuthParameters are the parameters KEDA's Kafka scaler reads from a
// TriggerAuthentication.
var kafkaAuthParameters = map[string]bool{"sasl": true, "username": true, "password": true, "tls": true, "ca": true, "cert": true, "key": true, "keyPassword": true}

// check reports every required field the ScaledObject lacks.
func (s *scaledObject) check() error {
	var errs []error
	if s.Spec.ScaleTargetRef == nil || s.Spec.ScaleTargetRef.Name == "" {
		errs = append(errs, errors.New("spec.scaleTargetRef.name: required"))
	}
	if s.Spec.MaxReplicaCount == nil || s.Spec.MinReplicaCount == nil {
		errs = append(errs, errors.New("spec.minReplicaCount and spec.maxReplicaCount: set them"))
	}
	if len(s.Spec.Triggers) == 0 {
		errs = append(errs, errors.New("spec.triggers: at least one"))
	}
	for i, tr := range s.Spec.Triggers {
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

// check reports every entry without parameter, name or key, and unknown
// parameters.
func (a *triggerAuthentication) check() error {
	var errs []error
	if len(a.Spec.SecretTargetRef) == 0 {
		errs = append(errs, errors.New("spec.secretTargetRef: empty"))
	}
	for i, r := range a.Spec.SecretTargetRef {
		if r.Parameter == "" || r.Name == "" || r.Key == "" {
			errs = append(errs, fmt.Errorf("spec.secretTargetRef[%d]: parameter, name and key are required", i))
		}
		if !kafkaAuthParameters[r.Parameter] {
			errs = append(errs, fmt.Errorf("spec.secretTargetRef[%d].parameter: %q is not a Kafka scaler parameter", i, r.Parameter))
		}
	}
	return errors.Join(errs...)
}
