package server

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/computehub/chub/certs"
)

// TestAppsOrigin checks the --apps-domain flag: its default, a port of its
// own or the external URL's, and names that cannot carry NAME.<domain>.
func TestAppsOrigin(t *testing.T) {
	for _, tt := range []struct{ flag, ext, domain, port string }{
		{"", "https://127.0.0.1:8443", "apps.localhost", "8443"},
		{"Apps.Example.com", "https://chub.example.com", "apps.example.com", ""},
		{"apps.example.com:9443", "https://127.0.0.1:8443", "apps.example.com", "9443"},
		{"apps.example.com:443", "https://127.0.0.1:8443", "apps.example.com", ""},
	} {
		d, p, err := AppsOrigin(tt.flag, tt.ext)
		if err != nil || d != tt.domain || p != tt.port {
			t.Errorf("AppsOrigin(%q, %q) = %q, %q, %v; want %q, %q", tt.flag, tt.ext, d, p, err, tt.domain, tt.port)
		}
	}
	for _, bad := range []string{"localhost", "10.0.0.5", "apps..example", "-apps.example.com", "apps_x.example.com", "apps.example.com:0", "apps.example.com:x", "*.apps.localhost"} {
		if d, p, err := AppsOrigin(bad, "https://127.0.0.1:8443"); err == nil {
			t.Errorf("AppsOrigin(%q) = %q, %q; want an error", bad, d, p)
		}
	}
}

// TestSetupTLSAppsCertificate checks that the application origins get a
// certificate: the local CA's covers *.<apps domain>; with a --tls-cert that
// does not, one of the local CA is made for them (and the client's SNI picks
// it); --apps-tls-cert is served for them, and refused when it does not cover them.
func TestSetupTLSAppsCertificate(t *testing.T) {
	handshake := func(cfg *tls.Config, name, caFile string) error {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go tls.Server(a, cfg).Handshake()
		return tls.Client(b, &tls.Config{ServerName: name, RootCAs: pool}).Handshake()
	}

	dir := t.TempDir()
	cfg, ca, err := setupTLS(Config{Listen: "127.0.0.1:8443", Out: io.Discard}, dir, "apps.localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"box.apps.localhost", "localhost"} {
		if err := handshake(cfg, name, ca); err != nil {
			t.Errorf("local CA, %s: %v", name, err)
		}
	}

	// A "real" certificate (here from another CA) for chub.example.com only.
	other := certs.In(filepath.Join(t.TempDir(), "real"))
	if _, err := certs.Ensure(other, []string{"chub.example.com"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	dir = t.TempDir()
	cfg, _, err = setupTLS(Config{Listen: "127.0.0.1:8443", TLSCert: other.Cert, TLSKey: other.Key, Out: &out}, dir, "apps.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(cfg, "chub.example.com", other.CACert); err != nil {
		t.Errorf("--tls-cert for its own name: %v", err)
	}
	if err := handshake(cfg, "box.apps.example.com", filepath.Join(dir, "tls", "ca.crt")); err != nil {
		t.Errorf("the application origin with a --tls-cert that does not cover it: %v", err)
	}
	if !strings.Contains(out.String(), "--apps-tls-cert") {
		t.Errorf("no word about the application origins' certificate: %q", out.String())
	}

	// --apps-tls-cert: served for the application origins; refused if it does not cover them.
	apps := certs.In(filepath.Join(t.TempDir(), "apps"))
	if _, err := certs.Ensure(apps, []string{"*.apps.example.com"}); err != nil {
		t.Fatal(err)
	}
	cfg, _, err = setupTLS(Config{Listen: "127.0.0.1:8443", TLSCert: other.Cert, TLSKey: other.Key, AppsTLSCert: apps.Cert, AppsTLSKey: apps.Key, Out: io.Discard}, t.TempDir(), "apps.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(cfg, "box.apps.example.com", apps.CACert); err != nil {
		t.Errorf("--apps-tls-cert: %v", err)
	}
	if _, _, err := setupTLS(Config{Listen: "127.0.0.1:8443", TLSCert: other.Cert, TLSKey: other.Key, AppsTLSCert: apps.Cert, AppsTLSKey: apps.Key, Out: io.Discard}, t.TempDir(), "apps.other.org"); err == nil {
		t.Error("an --apps-tls-cert that does not cover the apps domain was accepted")
	}
}
