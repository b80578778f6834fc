package certs

import (
	"crypto/tls"
	"path/filepath"
	"testing"
)

// TestEnsureWildcard checks that the server certificate covers the
// application origins' wildcard, and that one made without it is replaced.
func TestEnsureWildcard(t *testing.T) {
	p := In(filepath.Join(t.TempDir(), "tls"))
	if made, err := Ensure(p, []string{"box"}); err != nil || !made {
		t.Fatalf("first Ensure: %v %v", made, err)
	}
	if made, err := Ensure(p, []string{"box", "*.apps.localhost"}); err != nil || !made {
		t.Fatalf("Ensure with the wildcard: made %v, %v; want a new certificate", made, err)
	}
	if made, err := Ensure(p, []string{"box", "*.apps.localhost"}); err != nil || made {
		t.Fatalf("Ensure again: made %v, %v; want the same certificate kept", made, err)
	}
	pair, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"ci1.apps.localhost", "localhost", "box", "127.0.0.1"} {
		if err := pair.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	for _, h := range []string{"a.b.apps.localhost", "apps.localhost", "other.localhost"} {
		if pair.Leaf.VerifyHostname(h) == nil {
			t.Errorf("the certificate covers %s", h)
		}
	}
}
