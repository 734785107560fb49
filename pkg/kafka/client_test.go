package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/pkg/config"
	"github.com/auditpipe/auditpipe/pkg/dev/kafkatest"
	"github.com/auditpipe/auditpipe/pkg/kafka"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, all written as PEM files.
type pki struct {
	caFile, clientCert, clientKey string
	caPool                        *x509.CertPool
	server                        tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "auditpipe test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips ...net.IP) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
			DNSNames:     []string{cn},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	srvCert, srvKey := leaf(2, "kafka.test", x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	cliCert, cliKey := leaf(3, "auditpipe-client", x509.ExtKeyUsageClientAuth)
	server, err := tls.X509KeyPair(srvCert, srvKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pki{
		caFile:     writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))),
		clientCert: writeFile(t, "client.pem", string(cliCert)),
		clientKey:  writeFile(t, "client-key.pem", string(cliKey)),
		caPool:     pool,
		server:     server,
	}
}

func produceOne(t *testing.T, cl *kgo.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr())
}

func TestNewClientTLS(t *testing.T) {
	p := newPKI(t)
	cluster := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"), kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientCAs:    p.caPool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))

	t.Run("mutual TLS works", func(t *testing.T) {
		cfg := cluster.Config()
		cfg.TLS = kafka.TLSConfig{Enabled: true, CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey}
		cl, err := kafka.NewClient(cfg, nil, nil, "tls")
		require.NoError(t, err)
		defer cl.Close()
		produceOne(t, cl, "t")
		opts, err := cfg.Options(nil, nil, "reader")
		require.NoError(t, err)
		assert.Len(t, cluster.ConsumeAll(t, "t", 1, 5*time.Second, opts...), 1)
	})

	t.Run("server name override", func(t *testing.T) {
		cfg := cluster.Config()
		cfg.TLS = kafka.TLSConfig{Enabled: true, CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "kafka.test"}
		cl, err := kafka.NewClient(cfg, nil, nil, "tls")
		require.NoError(t, err)
		defer cl.Close()
		require.NoError(t, pingSoon(cl))
	})

	t.Run("untrusted server fails", func(t *testing.T) {
		cfg := cluster.Config()
		cfg.TLS = kafka.TLSConfig{Enabled: true, CertFile: p.clientCert, KeyFile: p.clientKey} // system roots only
		cl, err := kafka.NewClient(cfg, nil, nil, "tls")
		require.NoError(t, err)
		defer cl.Close()
		err = pingSoon(cl)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
	})

	t.Run("bad PEM names the file", func(t *testing.T) {
		cfg := cluster.Config()
		bad := writeFile(t, "not-a-ca.pem", "hello")
		cfg.TLS = kafka.TLSConfig{Enabled: true, CAFile: bad}
		_, err := kafka.NewClient(cfg, nil, nil, "tls")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "tls.ca_file")
		assert.Contains(t, err.Error(), bad)
	})

	t.Run("mismatched key names both files", func(t *testing.T) {
		other := newPKI(t)
		cfg := cluster.Config()
		cfg.TLS = kafka.TLSConfig{Enabled: true, CertFile: p.clientCert, KeyFile: other.clientKey}
		_, err := kafka.NewClient(cfg, nil, nil, "tls")
		require.Error(t, err)
		assert.Contains(t, err.Error(), p.clientCert)
		assert.Contains(t, err.Error(), other.clientKey)
	})
}

func pingSoon(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return kafka.Ping(ctx, cl)
}

func TestNewClientSASL(t *testing.T) {
	for _, mech := range []string{kafka.MechanismPlain, kafka.MechanismScramSHA256, kafka.MechanismScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			cluster := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"), kfake.EnableSASL(), kfake.Superuser(mech, "svc", "s3cret"))

			cfg := cluster.Config()
			cfg.SASL = kafka.SASLConfig{Mechanism: mech, Username: "svc", Password: config.NewSecret("s3cret")}
			cl, err := kafka.NewClient(cfg, nil, nil, "sasl")
			require.NoError(t, err)
			defer cl.Close()
			produceOne(t, cl, "t")

			cfg.SASL.Password = config.NewSecret("wrong")
			bad, err := kafka.NewClient(cfg, nil, nil, "sasl-bad")
			require.NoError(t, err)
			defer bad.Close()
			err = pingSoon(bad)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "wrong")
		})
	}

	t.Run("password file", func(t *testing.T) {
		cluster := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"), kfake.EnableSASL(), kfake.Superuser("PLAIN", "svc", "from-file"))
		cfg := cluster.Config()
		cfg.SASL = kafka.SASLConfig{Mechanism: "plain", Username: "svc", PasswordFile: writeFile(t, "pw", "from-file\n")}
		cl, err := kafka.NewClient(cfg, nil, nil, "sasl")
		require.NoError(t, err)
		defer cl.Close()
		produceOne(t, cl, "t")
	})
}

func TestOptionsRejectsInvalidConfig(t *testing.T) {
	cfg := kafka.DefaultConfig()
	cfg.Brokers = nil
	_, err := cfg.Options(nil, nil, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "brokers:")
	assert.Contains(t, err.Error(), "component: must not be empty")
}

// metricFamilies gathers reg into name → family.
func metricFamilies(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// components returns the distinct component label values of mf, sorted.
func components(mf *dto.MetricFamily) []string {
	var out []string
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == kafka.ComponentLabel && !slices.Contains(out, l.GetValue()) {
				out = append(out, l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestMetrics(t *testing.T) {
	cluster := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"))
	reg := prometheus.NewRegistry()

	producer, err := kafka.NewClient(cluster.Config(), nil, reg, "producer")
	require.NoError(t, err)
	defer producer.Close()
	other, err := kafka.NewClient(cluster.Config(), nil, reg, "consumer")
	require.NoError(t, err, "two clients with different components share a registry")
	produceOne(t, producer, "t")
	require.NoError(t, pingSoon(other))

	// kprom counts a batch in franz-go's produce-batch hook, which may run
	// just after ProduceSync's promise returns: wait for it.
	var mfs map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		mfs = metricFamilies(t, reg)
		_, ok := mfs["auditpipe_kafka_produce_records_total"]
		return ok
	}, 5*time.Second, 10*time.Millisecond, "produce metric registered")
	records := mfs["auditpipe_kafka_produce_records_total"]
	assert.Equal(t, []string{"producer"}, components(records))
	assert.InDelta(t, 1, records.GetMetric()[0].GetCounter().GetValue(), 0)
	assert.Equal(t, []string{"consumer", "producer"}, components(mfs["auditpipe_kafka_connects_total"]))

	// A third client reusing a live component cannot register: it is an
	// error, and the first client's metrics survive.
	_, err = kafka.NewClient(cluster.Config(), nil, reg, "producer")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registering metrics")
	assert.Contains(t, components(metricFamilies(t, reg)["auditpipe_kafka_connects_total"]), "producer")

	// Closing unregisters, so the component can be reused.
	other.Close()
	assert.NotContains(t, components(metricFamilies(t, reg)["auditpipe_kafka_connects_total"]), "consumer")
	again, err := kafka.NewClient(cluster.Config(), nil, reg, "consumer")
	require.NoError(t, err)
	again.Close()
}

func TestLoggingOneLevelDown(t *testing.T) {
	cluster := kafkatest.NewCluster(t, kfake.SeedTopics(1, "t"))

	// kgo's goroutines may still log after Close returns: the sinks lock.
	var info, debug syncBuffer
	infoLog := slog.New(slog.NewTextHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo}))
	debugLog := slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, lg := range []*slog.Logger{infoLog, debugLog} {
		cl, err := kafka.NewClient(cluster.Config(), lg, nil, "logs")
		require.NoError(t, err)
		produceOne(t, cl, "t")
		cl.Close()
	}
	assert.Empty(t, info.String(), "kgo info chatter stays below info")
	assert.Contains(t, debug.String(), "level=DEBUG")
	assert.Contains(t, debug.String(), "kafka_client=logs")
	assert.NotContains(t, debug.String(), "level=INFO")
}

func TestPing(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	cl, err := kafka.NewClient(cluster.Config(), nil, nil, "ping")
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, pingSoon(cl))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg := cluster.Config()
	cfg.Brokers = []string{dead}
	down, err := kafka.NewClient(cfg, nil, nil, "ping-down")
	require.NoError(t, err)
	defer down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = kafka.Ping(ctx, down)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "pinging kafka: "))
}
