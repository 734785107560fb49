// Package kubeplay turns the chart's rendered objects into what podman 4.3's
// `podman kube play` runs, with the smallest changes that version needs:
//
//   - a Job becomes the Pod of its template (kube play knows Pods,
//     Deployments and PersistentVolumeClaims, not Jobs);
//   - a StatefulSet becomes a Deployment of the same template (the pod names
//     differ; the chart's enricher takes its transactional id from
//     $(POD_NAME), which stays unique and stable for the pod's life);
//   - a volume of Secrets (secret or projected) becomes a hostPath directory
//     holding the same files, written under Dir as the kubelet would lay them
//     out: podman 4.3 mounts only hostPath, configMap, emptyDir and
//     persistentVolumeClaim volumes, and writes no nested paths;
//   - containers lose their ports and probes: podman 4.3 refuses container
//     ports on the host network (which the pods need to reach services on
//     the host's loopback), and turns an httpGet probe into `curl` run
//     inside the container, which the images (no shell, no curl) cannot
//     run. The test polls /readyz itself, as the kubelet's probe would.
//
// ConfigMaps pass through; Services, PodDisruptionBudgets and Secrets are
// left out (kube play has no use for them); any other kind is an error, so a
// new object in the chart is a decision here. Objects annotated as Helm
// pre-install hooks go to Hooks, the rest to Release: play the hooks first
// and wait for their pods to exit, as Helm waits for the Job.
package kubeplay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Input is a rendering of the chart and what its references resolve to.
type Input struct {
	// Manifests are the rendered YAML documents.
	Manifests []string
	// Secrets hold the data of the Secrets the values name, by name.
	Secrets map[string]map[string]string
	// Dir receives one directory per converted Secret volume.
	Dir string
}

// Plays are the YAML streams to hand `podman kube play`, in order.
type Plays struct {
	// Hooks hold the pre-install hooks (the migrations Job's ConfigMap and
	// Pod).
	Hooks []byte
	// Release holds the rest: ConfigMaps and Deployments.
	Release []byte
	// Pods names the pods of Hooks (what to wait for).
	HookPods []string
}

// Convert converts in.
func Convert(in Input) (Plays, error) {
	var hooks, release []any
	var hookPods []string
	var errs []error
	for i, doc := range in.Manifests {
		objs, pods, err := convertDoc(doc, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		if objs == nil {
			continue
		}
		if isHook(doc) {
			hooks = append(hooks, objs)
			hookPods = append(hookPods, pods...)
		} else {
			release = append(release, objs)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Plays{}, err
	}
	h, err := stream(sortConfigMapsFirst(hooks))
	if err != nil {
		return Plays{}, err
	}
	r, err := stream(sortConfigMapsFirst(release))
	if err != nil {
		return Plays{}, err
	}
	return Plays{Hooks: h, Release: r, HookPods: hookPods}, nil
}

// isHook reports whether doc is a Helm pre-install hook.
func isHook(doc string) bool {
	var m metav1.PartialObjectMetadata
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		return false
	}
	return strings.Contains(m.Annotations["helm.sh/hook"], "pre-install")
}

// convertDoc converts one document: nil for a kind kube play does not need.
func convertDoc(doc string, in Input) (any, []string, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return nil, nil, err
	}
	switch tm.APIVersion + "/" + tm.Kind {
	case "/":
		return nil, nil, nil // only comments
	case "v1/Service", "policy/v1/PodDisruptionBudget", "v1/Secret":
		return nil, nil, nil
	case "v1/ConfigMap":
		o := &corev1.ConfigMap{}
		return o, nil, yaml.UnmarshalStrict([]byte(doc), o)
	case "apps/v1/Deployment":
		o := &appsv1.Deployment{}
		if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
			return nil, nil, err
		}
		return o, nil, forPodman(&o.Spec.Template.Spec, o.Name, in)
	case "apps/v1/StatefulSet":
		s := &appsv1.StatefulSet{}
		if err := yaml.UnmarshalStrict([]byte(doc), s); err != nil {
			return nil, nil, err
		}
		d := statefulSetAsDeployment(s)
		return d, nil, forPodman(&d.Spec.Template.Spec, d.Name, in)
	case "batch/v1/Job":
		j := &batchv1.Job{}
		if err := yaml.UnmarshalStrict([]byte(doc), j); err != nil {
			return nil, nil, err
		}
		p := jobAsPod(j)
		return p, []string{p.Name}, forPodman(&p.Spec, p.Name, in)
	}
	return nil, nil, fmt.Errorf("%s %s: no conversion for podman kube play: decide in package kubeplay", tm.APIVersion, tm.Kind)
}

// jobAsPod is the one pod a Job with backoffLimit 0 would run.
func jobAsPod(j *batchv1.Job) *corev1.Pod {
	t := j.Spec.Template.DeepCopy()
	meta := t.ObjectMeta
	meta.Name, meta.Namespace = j.Name, j.Namespace
	return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta, Spec: t.Spec}
}

// statefulSetAsDeployment keeps the StatefulSet's name, replicas, selector
// and pod template.
func statefulSetAsDeployment(s *appsv1.StatefulSet) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: *s.ObjectMeta.DeepCopy(),
		Spec: appsv1.DeploymentSpec{
			Replicas: s.Spec.Replicas,
			Selector: s.Spec.Selector.DeepCopy(),
			Template: *s.Spec.Template.DeepCopy(),
		},
	}
}

// forPodman converts the pod spec as the package doc says.
func forPodman(pod *corev1.PodSpec, owner string, in Input) error {
	for i := range pod.Containers {
		c := &pod.Containers[i]
		c.Ports, c.LivenessProbe, c.ReadinessProbe, c.StartupProbe = nil, nil, nil, nil
	}
	return secretsToHostPaths(pod, owner, in)
}

// secretsToHostPaths replaces every volume made of Secrets with a hostPath
// directory under in.Dir holding its files.
func secretsToHostPaths(pod *corev1.PodSpec, owner string, in Input) error {
	var errs []error
	for i := range pod.Volumes {
		v := &pod.Volumes[i]
		var sources []corev1.SecretProjection
		mode := int32(0o644)
		switch {
		case v.Secret != nil:
			sources = []corev1.SecretProjection{{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items}}
			if v.Secret.DefaultMode != nil {
				mode = *v.Secret.DefaultMode
			}
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret == nil {
					errs = append(errs, fmt.Errorf("%s: volume %s: only Secret projections are converted", owner, v.Name))
					continue
				}
				sources = append(sources, *s.Secret)
			}
			if v.Projected.DefaultMode != nil {
				mode = *v.Projected.DefaultMode
			}
		default:
			continue
		}
		dir := filepath.Join(in.Dir, owner+"-"+v.Name)
		if err := writeSecretVolume(dir, sources, os.FileMode(mode), fsGroup(pod), in.Secrets); err != nil {
			errs = append(errs, fmt.Errorf("%s: volume %s: %w", owner, v.Name, err))
			continue
		}
		dirType := corev1.HostPathDirectory
		v.VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType}}
	}
	return errors.Join(errs...)
}

// fsGroup is the group the kubelet gives a pod's volume files (-1: none).
func fsGroup(pod *corev1.PodSpec) int {
	if pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil {
		return int(*pod.SecurityContext.FSGroup)
	}
	return -1
}

// writeSecretVolume writes the Secrets' items into dir as the kubelet
// does: each item at its path, with mode, owned by root and the fsGroup.
func writeSecretVolume(dir string, sources []corev1.SecretProjection, mode os.FileMode, group int, secrets map[string]map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, src := range sources {
		data, ok := secrets[src.Name]
		if !ok {
			return fmt.Errorf("no Secret %q", src.Name)
		}
		items := src.Items
		if len(items) == 0 {
			for k := range data {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			content, ok := data[it.Key]
			if !ok {
				return fmt.Errorf("no key %q in Secret %q", it.Key, src.Name)
			}
			p := filepath.Join(dir, it.Path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), mode); err != nil {
				return err
			}
			if err := os.Chmod(p, mode); err != nil { // past the umask
				return err
			}
			if group >= 0 {
				if err := os.Chown(p, -1, group); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sortConfigMapsFirst puts ConfigMaps before the pods that mount them.
func sortConfigMapsFirst(objs []any) []any {
	sort.SliceStable(objs, func(i, j int) bool {
		_, ci := objs[i].(*corev1.ConfigMap)
		_, cj := objs[j].(*corev1.ConfigMap)
		return ci && !cj
	})
	return objs
}

// stream writes objs as one multi-document YAML stream.
func stream(objs []any) ([]byte, error) {
	var b bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}
