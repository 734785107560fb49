package kubeplay

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/auditpipe/auditpipe/deploy/helm"
)

// play decodes a converted stream into its objects by kind and name.
func play(t *testing.T, stream []byte) map[string]map[string][]byte {
	t.Helper()
	out := map[string]map[string][]byte{}
	for _, doc := range strings.Split(string(stream), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m metav1.PartialObjectMetadata
		require.NoError(t, yaml.Unmarshal([]byte(doc), &m))
		if out[m.Kind] == nil {
			out[m.Kind] = map[string][]byte{}
		}
		out[m.Kind][m.Name] = []byte(doc)
	}
	return out
}

func TestConvertTheChart(t *testing.T) {
	files, err := helm.Render("../../helm/auditpipe", "play", "default", map[string]any{
		"poller":       map[string]any{"sources": []any{map[string]any{"source_id": "acme", "workspace_id": "ws", "admin_key_secret": map[string]any{"name": "openai-acme"}}}},
		"kafkaSecrets": map[string]any{"saslPassword": map[string]any{"name": "kafka-user"}},
		"kafka":        map[string]any{"sasl": map[string]any{"mechanism": "PLAIN", "username": "u"}},
	})
	require.NoError(t, err)
	dir := t.TempDir()
	plays, err := Convert(Input{Manifests: helm.Documents(files), Dir: dir, Secrets: map[string]map[string]string{
		"openai-acme": {"admin-key": "sk-admin-acme"}, "kafka-user": {"password": "kafka-secret"},
	}})
	require.NoError(t, err)

	hooks, release := play(t, plays.Hooks), play(t, plays.Release)
	assert.Equal(t, []string{"play-auditpipe-migrations"}, plays.HookPods)
	assert.Contains(t, hooks["ConfigMap"], "play-auditpipe-migrations", "the Job's ConfigMap plays with it")
	assert.Contains(t, hooks["Pod"], "play-auditpipe-migrations", "the Job is its pod")
	assert.ElementsMatch(t, []string{"ConfigMap", "Deployment"}, keys(release), "the release plays as ConfigMaps and Deployments only")
	assert.ElementsMatch(t, []string{"play-auditpipe-poller", "play-auditpipe-enricher", "play-auditpipe-loader"}, keys(release["Deployment"]),
		"the enricher's StatefulSet is a Deployment")
	assert.Less(t, strings.LastIndex(string(plays.Release), "kind: ConfigMap"), strings.Index(string(plays.Release), "kind: Deployment"),
		"ConfigMaps come before the pods that mount them")

	var poller appsv1.Deployment
	require.NoError(t, yaml.UnmarshalStrict(release["Deployment"]["play-auditpipe-poller"], &poller))
	pod := poller.Spec.Template.Spec
	for _, c := range pod.Containers {
		assert.Empty(t, c.Ports, "no container ports on the host network")
		assert.Nil(t, c.LivenessProbe)
		assert.Nil(t, c.ReadinessProbe)
	}
	var secrets *corev1.Volume
	for i, v := range pod.Volumes {
		assert.Nil(t, v.Projected, "volume %s", v.Name)
		if v.Name == "secrets" {
			secrets = &pod.Volumes[i]
		}
	}
	require.NotNil(t, secrets)
	require.NotNil(t, secrets.HostPath)
	assert.Equal(t, filepath.Join(dir, "play-auditpipe-poller-secrets"), secrets.HostPath.Path)
	for path, want := range map[string]string{"sources/0/admin-key": "sk-admin-acme", "kafka/sasl-password": "kafka-secret"} {
		p := filepath.Join(secrets.HostPath.Path, path)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o440), fi.Mode().Perm(), "%s: the volume's defaultMode", path)
		if os.Geteuid() == 0 {
			assert.EqualValues(t, 65532, fi.Sys().(*syscall.Stat_t).Gid, "%s: the pod's fsGroup", path)
		}
	}
}

func TestConvertRefuses(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{name: "unknown kind", doc: "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: x}\n", want: "batch/v1 CronJob: no conversion"},
		{name: "missing Secret", doc: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n      volumes: [{name: s, secret: {secretName: nope}}]\n",
			want: `no Secret "nope"`},
		{name: "unknown field", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatta: {}\n", want: "datta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert(Input{Manifests: []string{tc.doc}, Dir: t.TempDir()})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
