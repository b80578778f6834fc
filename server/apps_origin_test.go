package server

import "testing"

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
