package helm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/auditpipe/auditpipe/deploy/internal/servicebin"
	"github.com/auditpipe/auditpipe/pkg/dev/chserver/chservertest"
)

// bins are the service binaries, built once for the whole package.
var bins servicebin.Binaries

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(&setup{m})
}

type setup struct{ m *testing.M }

func (s *setup) Run() int {
	dir, err := os.MkdirTemp("", "helm-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins, err = servicebin.Build(context.Background(), "../..", dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the services: %v\n", err)
		return 1
	}
	code := s.m.Run()
	if err := chservertest.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the embedded ClickHouse: %v\n", err)
		return 1
	}
	return code
}

// testPKI returns a CA certificate and a client certificate and key, PEM,
// standing in for the TLS Secrets.
func testPKI() (ca, cert, key string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "auditpipe-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", "", err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", "", err
	}
	c := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return c, c, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), nil
}
