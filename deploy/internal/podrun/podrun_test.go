package podrun

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestContainer(t *testing.T) {
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "City.mmdb"), []byte("db"), 0o600))
	pod := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: "svc",
			Args: []string{"--config", "/etc/app/config.yaml"},
			Env: []corev1.EnvVar{
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "ID", Value: "svc-$(POD)-$(UNDEFINED)"},
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "pw"}}},
				{Name: "KEY_FILE", Value: "/var/run/secrets/app/key"},
				{Name: "MEMORY", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
			},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "config", MountPath: "/etc/app"},
				{Name: "secrets", MountPath: "/var/run/secrets/app"},
				{Name: "geo", MountPath: "/var/lib/geo"},
				{Name: "tmp", MountPath: "/tmp"},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			{Name: "secrets", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Items: []corev1.KeyToPath{{Key: "pw", Path: "sub/key"}}}},
			}}}},
			{Name: "geo", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "geo"}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	c := Cluster{
		ConfigMaps: map[string]map[string]string{"cm": {"config.yaml": "key_file: /var/run/secrets/app/sub/key\ngeo: /var/lib/geo/City.mmdb\ntmp: /tmp/x\n"}},
		Secrets:    map[string]map[string]string{"s": {"pw": "hunter2"}},
		Volumes:    map[string]string{"geo": host},
		PodName:    "svc-0",
	}
	root := t.TempDir()
	inv, err := Container(pod, "svc", root, c)
	require.NoError(t, err)
	assert.Equal(t, []string{"--config", root + "/etc/app/config.yaml"}, inv.Args)
	assert.Equal(t, []string{"POD=svc-0", "ID=svc-svc-0-$(UNDEFINED)", "PASSWORD=hunter2", "KEY_FILE=" + root + "/var/run/secrets/app/key", "MEMORY=268435456"}, inv.Env)
	cfg, err := os.ReadFile(filepath.Join(root, "etc/app/config.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "key_file: "+root+"/var/run/secrets/app/sub/key\ngeo: "+root+"/var/lib/geo/City.mmdb\ntmp: /tmp/x\n", string(cfg))
	key, err := os.ReadFile(filepath.Join(root, "var/run/secrets/app/sub/key"))
	require.NoError(t, err)
	assert.Equal(t, "hunter2", string(key))
	db, err := os.ReadFile(filepath.Join(root, "var/lib/geo/City.mmdb"))
	require.NoError(t, err)
	assert.Equal(t, "db", string(db))

	cases := []struct {
		name   string
		mutate func(*corev1.PodSpec, *Cluster)
		want   string
	}{
		{name: "missing container", mutate: func(p *corev1.PodSpec, _ *Cluster) { p.Containers[0].Name = "other" }, want: `no container "svc"`},
		{name: "missing ConfigMap", mutate: func(_ *corev1.PodSpec, c *Cluster) { c.ConfigMaps = nil }, want: `no ConfigMap "cm"`},
		{name: "missing Secret key", mutate: func(_ *corev1.PodSpec, c *Cluster) { c.Secrets = map[string]map[string]string{"s": {}} }, want: `no key "pw"`},
		{name: "volume without stand-in", mutate: func(_ *corev1.PodSpec, c *Cluster) { c.Volumes = nil }, want: "no host directory"},
		{name: "mount of no volume", mutate: func(p *corev1.PodSpec, _ *Cluster) { p.Volumes = p.Volumes[1:] }, want: `no volume "config"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := *pod.DeepCopy()
			cc := c
			tc.mutate(&p, &cc)
			_, err := Container(p, "svc", t.TempDir(), cc)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
