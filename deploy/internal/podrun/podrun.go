// Package podrun turns a rendered Kubernetes pod template into what a
// kubelet would hand a container: its arguments, its environment (values,
// the downward API, Secret keys, $(VAR) references) and its mounted files
// (ConfigMaps, Secrets, projected volumes, emptyDirs and host directories
// standing in for other volumes), laid out under a root directory.
//
// Absolute paths under a mount point are rewritten to the same path under
// the root, in the arguments, the environment and the mounted ConfigMap
// files: the container sees /etc/auditpipe/config.yaml, the process started
// from the result reads <root>/etc/auditpipe/config.yaml.
package podrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/auditpipe/auditpipe/deploy/internal/servicebin"
)

// Cluster is what the pod's references resolve against.
type Cluster struct {
	// ConfigMaps are the ConfigMaps' data by name.
	ConfigMaps map[string]map[string]string
	// Secrets are the Secrets' data by name.
	Secrets map[string]map[string]string
	// Volumes give a host directory for each volume of another kind (a
	// PersistentVolumeClaim, ...), by volume name.
	Volumes map[string]string
	// PodName and Namespace answer the downward API.
	PodName   string
	Namespace string
}

// Container resolves the container called name of pod under root (a new,
// empty directory).
func Container(pod corev1.PodSpec, name, root string, c Cluster) (servicebin.Invocation, error) {
	var ctr *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			ctr = &pod.Containers[i]
		}
	}
	if ctr == nil {
		return servicebin.Invocation{}, fmt.Errorf("the pod has no container %q", name)
	}
	rw, err := mount(pod, *ctr, root, c)
	if err != nil {
		return servicebin.Invocation{}, err
	}
	env, err := environment(ctr.Env, ctr.Resources, c)
	if err != nil {
		return servicebin.Invocation{}, err
	}
	inv := servicebin.Invocation{Dir: root}
	for _, a := range append(append([]string(nil), ctr.Command[min(1, len(ctr.Command)):]...), ctr.Args...) {
		inv.Args = append(inv.Args, rw.Replace(a))
	}
	for _, kv := range env {
		inv.Env = append(inv.Env, rw.Replace(kv))
	}
	return inv, nil
}

// mount lays out the container's volume mounts under root and returns the
// replacer of mount paths.
func mount(pod corev1.PodSpec, ctr corev1.Container, root string, c Cluster) (*strings.Replacer, error) {
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := append([]corev1.VolumeMount(nil), ctr.VolumeMounts...)
	// Longest first, so /a/b is rewritten before /a.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].MountPath) > len(mounts[j].MountPath) })
	var pairs []string
	for _, m := range mounts {
		if m.MountPath != "/tmp" {
			pairs = append(pairs, m.MountPath, filepath.Join(root, m.MountPath))
		}
	}
	rw := strings.NewReplacer(pairs...)
	var errs []error
	for _, m := range mounts {
		v, ok := vols[m.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("volume mount %s: the pod has no volume %q", m.MountPath, m.Name))
			continue
		}
		if err := fill(v, filepath.Join(root, m.MountPath), c, rw); err != nil {
			errs = append(errs, fmt.Errorf("volume %s at %s: %w", m.Name, m.MountPath, err))
		}
	}
	return rw, errors.Join(errs...)
}

// fill writes the files of volume v into dir.
func fill(v corev1.Volume, dir string, c Cluster, rw *strings.Replacer) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if host, ok := c.Volumes[v.Name]; ok {
		return os.Symlink(host, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	switch {
	case v.ConfigMap != nil:
		data, ok := c.ConfigMaps[v.ConfigMap.Name]
		if !ok {
			return fmt.Errorf("no ConfigMap %q", v.ConfigMap.Name)
		}
		return writeItems(dir, data, v.ConfigMap.Items, rw)
	case v.Secret != nil:
		data, ok := c.Secrets[v.Secret.SecretName]
		if !ok {
			return fmt.Errorf("no Secret %q", v.Secret.SecretName)
		}
		return writeItems(dir, data, v.Secret.Items, nil)
	case v.Projected != nil:
		for _, src := range v.Projected.Sources {
			if err := fillProjection(src, dir, c, rw); err != nil {
				return err
			}
		}
		return nil
	case v.EmptyDir != nil:
		return nil
	}
	return errors.New("no host directory stands in for this volume (Cluster.Volumes)")
}

func fillProjection(src corev1.VolumeProjection, dir string, c Cluster, rw *strings.Replacer) error {
	switch {
	case src.Secret != nil:
		data, ok := c.Secrets[src.Secret.Name]
		if !ok {
			return fmt.Errorf("no Secret %q", src.Secret.Name)
		}
		return writeItems(dir, data, src.Secret.Items, nil)
	case src.ConfigMap != nil:
		data, ok := c.ConfigMaps[src.ConfigMap.Name]
		if !ok {
			return fmt.Errorf("no ConfigMap %q", src.ConfigMap.Name)
		}
		return writeItems(dir, data, src.ConfigMap.Items, rw)
	}
	return errors.New("unsupported projection")
}

// writeItems writes data's keys (all, or items as key → path) into dir;
// rw, when set, rewrites mount paths in the contents.
func writeItems(dir string, data map[string]string, items []corev1.KeyToPath, rw *strings.Replacer) error {
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		content, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("no key %q", it.Key)
		}
		if rw != nil {
			content = rw.Replace(content)
		}
		p := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// environment resolves env as the kubelet does: in order, each $(VAR)
// naming an earlier variable replaced by its value; a resourceFieldRef
// reads the container's own resources.
func environment(env []corev1.EnvVar, res corev1.ResourceRequirements, c Cluster) ([]string, error) {
	vals := map[string]string{}
	var out []string
	var errs []error
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil {
			var err error
			if v, err = valueFrom(*e.ValueFrom, res, c); err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", e.Name, err))
				continue
			}
		} else {
			v = varRef.ReplaceAllStringFunc(v, func(ref string) string {
				if val, ok := vals[ref[2:len(ref)-1]]; ok {
					return val
				}
				return ref
			})
		}
		vals[e.Name] = v
		out = append(out, e.Name+"="+v)
	}
	return out, errors.Join(errs...)
}

func valueFrom(src corev1.EnvVarSource, res corev1.ResourceRequirements, c Cluster) (string, error) {
	switch {
	case src.ResourceFieldRef != nil:
		// The kubelet's default divisor is 1: limits.memory in bytes.
		name, kind, _ := strings.Cut(src.ResourceFieldRef.Resource, ".")
		list := map[string]corev1.ResourceList{"limits": res.Limits, "requests": res.Requests}[name]
		q, ok := list[corev1.ResourceName(kind)]
		if d := src.ResourceFieldRef.Divisor; !ok || (!d.IsZero() && d.Value() != 1) {
			return "", fmt.Errorf("unsupported resourceFieldRef %s (set, with divisor 1)", src.ResourceFieldRef.Resource)
		}
		return strconv.FormatInt(q.Value(), 10), nil
	case src.FieldRef != nil:
		switch src.FieldRef.FieldPath {
		case "metadata.name":
			return c.PodName, nil
		case "metadata.namespace":
			return c.Namespace, nil
		}
		return "", fmt.Errorf("unsupported field %s", src.FieldRef.FieldPath)
	case src.SecretKeyRef != nil:
		v, ok := c.Secrets[src.SecretKeyRef.Name][src.SecretKeyRef.Key]
		if !ok {
			return "", fmt.Errorf("no key %q in Secret %q", src.SecretKeyRef.Key, src.SecretKeyRef.Name)
		}
		return v, nil
	case src.ConfigMapKeyRef != nil:
		v, ok := c.ConfigMaps[src.ConfigMapKeyRef.Name][src.ConfigMapKeyRef.Key]
		if !ok {
			return "", fmt.Errorf("no key %q in ConfigMap %q", src.ConfigMapKeyRef.Key, src.ConfigMapKeyRef.Name)
		}
		return v, nil
	}
	return "", errors.New("unsupported valueFrom")
}
