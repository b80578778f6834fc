package server

import (
	"os"
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
