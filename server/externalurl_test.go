package server

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveExternalURL(t *testing.T) {
	hn, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, listen, want string }{
		{"", "127.0.0.1:8443", "https://127.0.0.1:8443"},
		{"", "[::1]:8443", "https://[::1]:8443"},
		{"", "0.0.0.0:8443", "https://" + hn + ":8443"},
		{"", ":8443", "https://" + hn + ":8443"},
		{"", "[::]:443", "https://" + hn},
		{"", "10.1.2.3:443", "https://10.1.2.3"},
		{"https://chub.example.com", "0.0.0.0:8443", "https://chub.example.com"},
		{"https://chub.example.com:9443/", "127.0.0.1:8443", "https://chub.example.com:9443"},
	} {
		got, err := ResolveExternalURL(tc.flag, tc.listen)
		if err != nil || got != tc.want {
			t.Errorf("ResolveExternalURL(%q, %q) = %q, %v; want %q", tc.flag, tc.listen, got, err, tc.want)
		}
	}
	for _, bad := range []string{"http://chub.example.com", "chub.example.com", "https://", "https://chub.example.com/api", "https://u:p@chub.example.com", "https://chub.example.com?x=1"} {
		if _, err := ResolveExternalURL(bad, "127.0.0.1:8443"); err == nil || !strings.Contains(err.Error(), "--external-url") {
			t.Errorf("ResolveExternalURL(%q) = %v; want refused", bad, err)
		}
	}
}

// TestLocalCertificateCoversExternalURL: the local CA's server certificate
// names the --external-url host, so clients reaching the server there can
// verify it.
func TestLocalCertificateCoversExternalURL(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Listen: "127.0.0.1:8443", ExternalURL: "https://chub.example.test:9443", Out: io.Discard}
	if _, _, err := setupTLS(cfg, dir, "apps.localhost"); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "server.crt"), filepath.Join(dir, "tls", "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("chub.example.test"); err != nil {
		t.Fatalf("the local certificate (%v) does not cover the external URL's host: %v", leaf.DNSNames, err)
	}
}
