package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// A JetStream server that requires TLS with client certificates: the
// daemon joins it with --nats-tls-ca, --nats-tls-cert and --nats-tls-key,
// and without the CA it refuses to mount, saying why.
func TestNATSTLS(t *testing.T) {
	if bins.skip != "" {
		t.Skip(bins.skip)
	}
	dir := t.TempDir()
	ca, caKey := newCert(t, dir, "ca", nil, nil)
	newCert(t, dir, "server", ca, caKey)
	newCert(t, dir, "client", ca, caKey)
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		CaFile:   filepath.Join(dir, "ca.pem"),
		Verify:   true, // clients must show a certificate the CA signed
	})
	if err != nil {
		t.Fatal(err)
	}
	ns := &natsServer{t: t, store: t.TempDir()}
	ns.opts = natsOptions(t, "tls", ns.store)
	ns.opts.TLSConfig = tlsConfig
	ns.opts.TLSVerify = true
	ns.start()
	t.Cleanup(ns.stop)
	url := strings.Replace(ns.url(), "nats://", "tls://", 1)

	// Without the CA (nor a client certificate): no mount, and why.
	_, stderr, err := runErr(bins.ipcfs, "mount", "--nats", url, "--nats-timeout", "3s", filepath.Join(t.TempDir(), "ipc"))
	if err == nil || !strings.Contains(stderr, "certificate") {
		t.Errorf("mount without the CA: %v, stderr %q; want a failure naming the certificate", err, stderr)
	}

	d := mount(t, "--nats", url,
		"--nats-tls-ca", filepath.Join(dir, "ca.pem"),
		"--nats-tls-cert", filepath.Join(dir, "client.pem"),
		"--nats-tls-key", filepath.Join(dir, "client-key.pem"))
	ch := d.channel("secure")
	if err := os.WriteFile(filepath.Join(ch, "msg"), []byte("sealed\n"), 0); err != nil {
		t.Fatal(err)
	}
	if got := run(t, "head", "-n1", filepath.Join(ch, "msg")); got != "sealed\n" {
		t.Errorf("read over TLS: %q", got)
	}
}

// newCert writes NAME.pem and NAME-key.pem in dir: a CA if parent is nil,
// else a certificate for 127.0.0.1 signed by parent.
func newCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "ipcfs test " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
