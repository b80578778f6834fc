package sshgate

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/computehub/chub"
)

// FuzzCheckKey: an adminPublicKey is accepted only when the SSH library
// parses it (a 400 on the key's field otherwise), and the key it names
// reads back from its own authorized_keys line.
func FuzzCheckKey(f *testing.F) {
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm8FJ0Bc8V5p8w8u8rJ8w1yGq3fQ1hRHVg7b0cXxW0Z user@host")
	f.Add(`command="rm -rf /" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm8FJ0Bc8V5p8w8u8rJ8w1yGq3fQ1hRHVg7b0cXxW0Z`)
	f.Add("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== me")
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\nssh-rsa AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		err := CheckKey(key)
		if err != nil {
			e, ok := err.(*chub.Error)
			if !ok || e.Kind != chub.KindInvalid || e.Target != "properties.properties.sshSettings.adminPublicKey" {
				t.Fatalf("CheckKey(%q) = %#v; want a 400 on adminPublicKey", key, err)
			}
			return
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
		if err != nil {
			t.Fatalf("CheckKey accepted %q, which does not parse: %v", key, err)
		}
		again, _, _, _, err := ssh.ParseAuthorizedKey(ssh.MarshalAuthorizedKey(pk))
		if err != nil || !bytes.Equal(again.Marshal(), pk.Marshal()) {
			t.Fatalf("the key of %q does not read back: %v", key, err)
		}
	})
}

// FuzzParsePortRange: --ssh-ports is FIRST-LAST within 1-65535 with
// FIRST <= LAST, and its String form parses back to itself.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"50000-50999", "22", " 1 - 65535 ", "0-10", "10-9", "-5", "1-2-3", "99999999999999999999-1", "+1-+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			if !strings.Contains(err.Error(), "SSH port range") {
				t.Fatalf("ParsePortRange(%q) = %v; the message should say what was wrong", s, err)
			}
			return
		}
		if r.First < 1 || r.Last > 65535 || r.First > r.Last || r.Size() < 1 || !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Fatalf("ParsePortRange(%q) = %+v", s, r)
		}
		if again, err := ParsePortRange(r.String()); err != nil || again != r {
			t.Fatalf("ParsePortRange(%q) = %v, %v; want %v", r.String(), again, err, r)
		}
	})
}
