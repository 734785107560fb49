//go:build deploytest

package deploytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/auditpipe/auditpipe/deploy/internal/kubetools"
	"github.com/auditpipe/auditpipe/deploy/internal/servicebin"
)

// cluster is a running etcd and kube-apiserver, with an admin token.
type cluster struct {
	url        string
	token      string
	kubeconfig string
	rest       *rest.Config
	warnings   *warnings
}

// warnings records the API server's warnings (PodSecurity's among them).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// startCluster starts etcd and the API server built by kubetools, on
// loopback ports, and waits until the server is ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	ctx := context.Background()
	tools, err := kubetools.Build(ctx, root, os.Stderr)
	require.NoError(t, err)
	dir := t.TempDir()
	out := &servicebin.SyncWriter{W: &bytes.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("etcd and kube-apiserver output:\n%s", tail(out.W.(*bytes.Buffer).String(), 80))
		}
	})

	client, peer := freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	start(t, out, tools.Etcd, "--name", "deploytest", "--data-dir", filepath.Join(dir, "etcd"), "--unsafe-no-fsync",
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("deploytest=http://127.0.0.1:%d", peer))

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	saKey := filepath.Join(dir, "sa.key")
	require.NoError(t, os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	c := &cluster{token: "deploytest-admin-token", warnings: &warnings{}}
	tokens := filepath.Join(dir, "tokens.csv")
	require.NoError(t, os.WriteFile(tokens, []byte(c.token+`,admin,admin,"system:masters"`+"\n"), 0o600))
	port := freePort(t)
	c.url = fmt.Sprintf("https://127.0.0.1:%d", port)
	start(t, out, tools.APIServer, "--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir", filepath.Join(dir, "certs"), "--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", saKey,
		"--service-account-signing-key-file", saKey, "--service-cluster-ip-range", "10.96.0.0/24",
		// No kubelet, controllers or nodes: nothing reconciles the kubernetes Service's endpoints.
		"--endpoint-reconciler-type", "none")

	c.rest = &rest.Config{Host: c.url, BearerToken: c.token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, WarningHandler: c.warnings}
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["deploytest"] = &clientcmdapi.Cluster{Server: c.url, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.token}
	cfg.Contexts["deploytest"] = &clientcmdapi.Context{Cluster: "deploytest", AuthInfo: "admin"}
	cfg.CurrentContext = "deploytest"
	require.NoError(t, clientcmd.WriteToFile(*cfg, c.kubeconfig))

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodGet, c.url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		require.True(t, time.Now().Before(deadline), "kube-apiserver is not ready after 3 minutes: %v", err)
		time.Sleep(time.Second)
	}
}

// start starts a process for the test's life (SIGTERM at the end).
func start(t *testing.T, out *servicebin.SyncWriter, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the CRDs (KEDA's and the Prometheus Operator's, from
// their modules) and waits until each is established.
func installCRDs(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	paths, err := kubetools.CRDs(ctx, root)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(c.rest)
	require.NoError(t, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal(b, &obj), p)
		u := &unstructured.Unstructured{Object: obj}
		_, err = dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{})
		require.NoError(t, err, p)
		require.Eventually(t, func() bool {
			got, err := dyn.Resource(crdGVR).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, cd := range conds {
				m, _ := cd.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true
				}
			}
			return false
		}, time.Minute, 200*time.Millisecond, "CRD %s is established", u.GetName())
	}
}

// clientset returns a typed client.
func (c *cluster) clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.rest)
	require.NoError(t, err)
	return cs
}

func TestKubeAPIServerStarts(t *testing.T) {
	c := startCluster(t)
	v, err := c.clientset(t).Discovery().ServerVersion()
	require.NoError(t, err)
	assert.Equal(t, kubetools.Version, v.GitVersion, "the linked version, which Helm checks kubeVersion against")
	installCRDs(t, c)
}
