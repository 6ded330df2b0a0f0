package itest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs is a throwaway certificate authority and a server certificate it
// signed for localhost and 127.0.0.1, as PEM files in a temporary
// directory.
type Certs struct {
	// Dir holds the files.
	Dir string
	// CAFile is the CA certificate, for a client's ca_file or a server's
	// truststore.
	CAFile string
	// CertFile is the server certificate; KeyFile its unencrypted PKCS#8
	// private key.
	CertFile string
	KeyFile  string
	// KeyStoreFile is KeyFile followed by CertFile, the layout of a Kafka
	// PEM keystore.
	KeyStoreFile string
	// OtherCAFile is a second, unrelated CA: a client that trusts only it
	// must refuse the server.
	OtherCAFile string
}

// NewCerts generates the CA and the server certificate (RSA 2048, which
// every server version accepts) in t.TempDir().
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{
		Dir:          dir,
		CAFile:       filepath.Join(dir, "ca.pem"),
		CertFile:     filepath.Join(dir, "server.pem"),
		KeyFile:      filepath.Join(dir, "server.key"),
		KeyStoreFile: filepath.Join(dir, "keystore.pem"),
		OtherCAFile:  filepath.Join(dir, "other-ca.pem"),
	}
	now := time.Now()
	caKey, caCert, caDER := newCA(t, "textpulse test CA", now)
	srvKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	_, _, otherDER := newCA(t, "unrelated test CA", now)
	writeFiles(t, map[string][]byte{
		c.CAFile:       caPEM,
		c.CertFile:     certPEM,
		c.KeyFile:      keyPEM,
		c.KeyStoreFile: append(append([]byte{}, keyPEM...), certPEM...),
		c.OtherCAFile:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherDER}),
	})
	return c
}

// newCA returns a self-signed P-256 CA certificate named cn, valid from an
// hour before now for a day: its key, the certificate and its DER bytes.
func newCA(t testing.TB, cn string, now time.Time) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

// writeFiles writes each file, path to content, readable by the user only.
func writeFiles(t testing.TB, files map[string][]byte) {
	t.Helper()
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
