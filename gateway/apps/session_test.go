package apps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSessionSealOpen(t *testing.T) {
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	in := session{UserID: "user-one", ComputeID: "c1", TokenHash: "token-hash-abc", Expires: now.Add(time.Hour).Unix()}
	v := s.seal(in)
	if strings.Contains(v, "token-hash") || strings.Contains(v, "user-one") {
		t.Fatalf("the cookie %q shows its content", v)
	}
	out, err := s.open(v, now)
	if err != nil || out != in {
		t.Fatalf("open: %+v, %v; want %+v", out, err, in)
	}
	if _, err := s.open(v, now.Add(2*time.Hour)); err == nil {
		t.Error("an expired session opened")
	}
	tampered := []byte(v)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == v[len(v)/2] {
		t.Fatal("no change")
	}
	for _, bad := range []string{string(tampered), "", "!!!", v[:10]} {
		if _, err := s.open(bad, now); err == nil {
			t.Errorf("a forged cookie %q opened", bad)
		}
	}
	other, _ := newSealer(make([]byte, 32))
	if _, err := other.open(v, now); err == nil {
		t.Error("a cookie opened with another key")
	}
}

func TestSessionKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", "apps-session.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil || string(k1) != string(k2) {
		t.Fatal("the key changed on reload")
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := LoadOrCreateKey(p); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		path, name, app string
		ok              bool
	}{
		{"/instances/ci1/apps/jupyter/", "ci1", "jupyter", true},
		{"/instances/ci1/apps/jupyter/api/kernels", "ci1", "jupyter", true},
		{"/instances/ci1/apps/jupyter", "ci1", "jupyter", true},
		{"/instances/ci1/apps/", "", "", false},
		{"/instances/ci1/other/x/", "", "", false},
		{"/instances//apps/x/", "", "", false},
		{"/elsewhere", "", "", false},
	}
	for _, tt := range tests {
		name, app, _, ok := parseOldPath(tt.path)
		if name != tt.name || app != tt.app || ok != tt.ok {
			t.Errorf("parseOldPath(%q) = %q, %q, %v; want %q, %q, %v", tt.path, name, app, ok, tt.name, tt.app, tt.ok)
		}
	}
	for p, want := range map[string]string{"/jupyter/": "jupyter", "/jupyter/api/kernels": "jupyter", "/jupyter": "jupyter", "/": "", "//x": "", "/_chub/signin": "", "/a b/": ""} {
		if app, ok := parsePath(p); app != want && ok {
			t.Errorf("parsePath(%q) = %q, %v; want %q", p, app, ok, want)
		} else if ok != (want != "") {
			t.Errorf("parsePath(%q) = %q, %v", p, app, ok)
		}
	}
}
