package sshgate

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/computehub/chub"
)

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PortRange
		bad  bool
	}{
		{in: "50000-50999", want: PortRange{50000, 50999}},
		{in: " 2222 - 2223 ", want: PortRange{2222, 2223}},
		{in: "2222", want: PortRange{2222, 2222}},
		{in: "50999-50000", bad: true},
		{in: "0-10", bad: true},
		{in: "1-70000", bad: true},
		{in: "a-b", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParsePortRange(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParsePortRange(%q) = %v; want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// portStore is a store holding computes with SSH ports, with the unique
// index the SQL store has.
type portStore struct {
	chub.Store
	mu    sync.Mutex
	ports map[int]string
}

func (s *portStore) ListAllComputes(context.Context) ([]*chub.Compute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*chub.Compute
	for p, id := range s.ports {
		cs = append(cs, &chub.Compute{ID: id, SSHPort: p})
	}
	return cs, nil
}

func (s *portStore) insert(id string, port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.ports[port]; taken {
		return false
	}
	s.ports[port] = id
	return true
}

func TestAllocatorSkipsTakenAndBusyPorts(t *testing.T) {
	st := &portStore{ports: map[int]string{100: "a", 101: "b"}}
	busy := map[int]bool{102: true}
	a := &Allocator{Range: PortRange{100, 104}, Store: st,
		InUse: func(_ string, p int) bool { return busy[p] }, Rand: func(int) int { return 0 }}
	if p, err := a.Pick(context.Background()); err != nil || p != 103 {
		t.Fatalf("Pick = %d, %v; want 103 (100, 101 recorded, 102 in use on the host)", p, err)
	}
	st.insert("c", 103)
	if p, err := a.Pick(context.Background()); err != nil || p != 104 {
		t.Fatalf("Pick = %d, %v; want 104", p, err)
	}
	st.insert("d", 104)
	if _, err := a.Pick(context.Background()); err != ErrNoPorts {
		t.Fatalf("Pick on a full range: %v; want ErrNoPorts", err)
	}
}

// Concurrent creates each end with a distinct port when they retry on the
// store's conflict, as lifecycle does.
func TestAllocatorConcurrentPicksAreDistinct(t *testing.T) {
	st := &portStore{ports: map[int]string{}}
	a := &Allocator{Range: PortRange{2000, 2049}, Store: st, InUse: func(string, int) bool { return false }}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := a.Pick(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if st.insert(strconv.Itoa(i), p) {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(st.ports) != 50 {
		t.Fatalf("%d ports given to 50 instances", len(st.ports))
	}
}

func TestHostPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if !hostPortInUse("127.0.0.1", port) {
		t.Fatalf("port %d is listened on but not reported in use", port)
	}
}

func TestHostKeyIsStableAndPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ssh")
	k1, err := LoadOrCreateHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, HostKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, %v; want mode 0600", fi, err)
	}
	k2, err := LoadOrCreateHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.PublicKey().Type() != ssh.KeyAlgoED25519 || !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) {
		t.Fatalf("host key %s then %s; want the same ed25519 key", ssh.FingerprintSHA256(k1.PublicKey()), ssh.FingerprintSHA256(k2.PublicKey()))
	}
}

func TestCheckKey(t *testing.T) {
	signer, err := LoadOrCreateHostKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{good, true},
		{good[:len(good)-10], false},
		{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm8 x", false},
		{"", false},
	} {
		if err := CheckKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("CheckKey(%q) = %v; want ok=%v", tc.key, err, tc.ok)
		}
	}
}

func TestInstanceHostAndEnvNames(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "[::1]": true, "Box1": true,
		"10.0.0.1": false, "example.com": false, "": false} {
		if got := instanceHost(host, "box1"); got != want {
			t.Errorf("instanceHost(%q) = %v; want %v", host, got, want)
		}
	}
	for name, want := range map[string]bool{"LANG": true, "LC_ALL": true, "_x1": true, "1A": false, "A-B": false, "": false, "A=B": false} {
		if got := validEnvName(name); got != want {
			t.Errorf("validEnvName(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestPublicHost(t *testing.T) {
	hn, _ := os.Hostname()
	for listen, want := range map[string]string{"127.0.0.1:8443": "127.0.0.1", "10.1.2.3:443": "10.1.2.3", "0.0.0.0:8443": hn, ":8443": hn, "[::]:8443": hn} {
		if got := PublicHost(listen); got != want {
			t.Errorf("PublicHost(%q) = %q; want %q", listen, got, want)
		}
	}
}
