package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/computehub/chub"
)

// TestSecurityContainerHardening plays root inside a real instance
// (azureuser has passwordless sudo) and checks what the container engines'
// hardening takes away: a seccomp filter is on, new user namespaces and
// mounts are refused, and root inside is not root on the host (a user
// namespace over a range of subordinate ids, seen in the instance's
// uid_map and in the owners of what it writes to its disk).
func TestSecurityContainerHardening(t *testing.T) {
	s := startServer(t)
	c := s.client()
	create(t, c, "hard", "Standard_DS1_v2")
	id := instanceID(t, c, "hard")

	check := func(when string) {
		t.Helper()
		for _, who := range []string{"", "sudo -n "} {
			if out := mustRun(t, c, "hard", who+"grep Seccomp: /proc/self/status"); !strings.Contains(out, "Seccomp:\t2") {
				t.Errorf("%s: %sgrep Seccomp: /proc/self/status = %q; want mode 2 (a filter)", when, who, out)
			}
			if out, code := run(t, c, "hard", who+"unshare -Urm true 2>&1"); code == 0 {
				t.Errorf("%s: %sunshare -Urm true succeeded (a new user namespace with mounts): %q", when, who, out)
			}
			if out, code := run(t, c, "hard", who+"unshare -U true 2>&1"); code == 0 {
				t.Errorf("%s: %sunshare -U true succeeded: %q", when, who, out)
			}
		}
		if out, code := run(t, c, "hard", "sudo -n mount -t tmpfs none /mnt 2>&1"); code == 0 {
			t.Errorf("%s: mount -t tmpfs as root succeeded: %q", when, out)
		}
		if out, code := run(t, c, "hard", "sudo -n unshare -m mount -t tmpfs none /mnt 2>&1"); code == 0 {
			t.Errorf("%s: unshare -m mount -t tmpfs as root succeeded: %q", when, out)
		}
		for _, f := range []string{"uid_map", "gid_map"} {
			out := mustRun(t, c, "hard", "cat /proc/self/"+f)
			if fs := strings.Fields(out); len(fs) != 3 || fs[0] != "0" || fs[1] == "0" || fs[2] == "4294967295" {
				t.Errorf("%s: /proc/self/%s = %q; want one range 0 HOSTID COUNT with HOSTID > 0", when, f, out)
			}
		}
		// What still works as root: sudo, writes to the system dirs.
		if out := mustRun(t, c, "hard", "sudo -n sh -c 'id -u; touch /usr/local/bin/probe /root/probe; echo ok'"); out != "0\nok\n" {
			t.Errorf("%s: root's writes: %q", when, out)
		}
	}
	check("after create")
	mustRun(t, c, "hard", "touch ~/userprobe")

	// On the host, in the instance's upper dir, what root and azureuser
	// wrote is owned by ids of the instance's range, not by 0 and 1000.
	upper := filepath.Join(s.dataDir, "runtime", "local", "instances", id, "upper")
	owner := func(rel string) (uint32, uint32) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(upper, rel))
		if err != nil {
			t.Fatalf("on the host: %v", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid
	}
	rootUID, rootGID := owner("root/probe")
	if rootUID == 0 || rootGID == 0 {
		t.Errorf("a file root created inside is owned by %d:%d on the host; want ids of the instance's range", rootUID, rootGID)
	}
	if u, g := owner("usr/local/bin/probe"); u != rootUID || g != rootGID {
		t.Errorf("/usr/local/bin/probe is %d:%d on the host; want %d:%d like /root/probe", u, g, rootUID, rootGID)
	}
	if u, g := owner("home/azureuser/userprobe"); u != rootUID+1000 || g != rootGID+1000 {
		t.Errorf("a file azureuser created inside is %d:%d on the host; want %d:%d", u, g, rootUID+1000, rootGID+1000)
	}

	// The range is the instance's for good: the same after stop/start.
	act(t, c, "hard", chub.OpStop)
	act(t, c, "hard", chub.OpStart)
	check("after stop/start")
	if u, _ := owner("root/probe"); u != rootUID {
		t.Errorf("after stop/start /root/probe is owned by %d; want %d", u, rootUID)
	}
	if out := mustRun(t, c, "hard", "sudo -n ls -n /root/probe"); !strings.Contains(out, " 0 0 ") {
		t.Errorf("after stop/start, inside, /root/probe is not root's: %q", out)
	}

	// A disk made before user namespaces (host ids 0-65535 in its upper
	// dir, no recorded range) still starts: it is shifted once.
	act(t, c, "hard", chub.OpStop)
	os.Remove(filepath.Join(filepath.Dir(upper), "idmap.json"))
	filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			os.Lchown(p, int(st.Uid-rootUID), int(st.Gid-rootGID))
		}
		return nil
	})
	if u, _ := owner("home/azureuser/userprobe"); u != 1000 {
		t.Fatalf("the emulated old disk: userprobe is owned by %d; want 1000", u)
	}
	act(t, c, "hard", chub.OpStart)
	check("an old disk, started")
	if u, g := owner("root/probe"); u == 0 || g == 0 {
		t.Errorf("an old disk, started: /root/probe is %d:%d on the host; want the instance's range", u, g)
	}
	if u, _ := owner("home/azureuser/userprobe"); u < 1000 || u == 1000 {
		t.Errorf("an old disk, started: userprobe is owned by %d on the host; want its range's 1000", u)
	}
	if out := mustRun(t, c, "hard", "stat -c '%u:%g %U' ~/userprobe ~; sudo -n stat -c '%u:%g' /root/probe"); out != "1000:1000 azureuser\n1000:1000 azureuser\n0:0\n" {
		t.Errorf("an old disk, started: owners inside: %q", out)
	}
}

// TestSecurityHostLoopback: an instance reaches, on the host's loopback
// (10.0.2.2), the ComputeHub API and the ports the admin opened with
// --instance-host-ports, and nothing else listening there.
func TestSecurityHostLoopback(t *testing.T) {
	if _, err := os.Stat("/usr/bin/pasta"); err != nil {
		t.Fatal("pasta is not installed (apt-get install passt, scripts/setup.sh)")
	}
	closed := hostHTTP(t)
	opened := hostHTTP(t)
	s := startServer(t, "--instance-host-ports", opened)
	c := s.client()
	createWith(t, c, "loopback", chub.InstanceSettings{VMSize: "Standard_DS1_v2"})
	_, apiPort, _ := net.SplitHostPort(s.addr)

	if out := mustRun(t, c, "loopback", fetch("http://"+hostLoopback+":"+opened+"/")); out != "hello from the host\n" {
		t.Errorf("an opened host port %s: %q; want the host's greeting", opened, out)
	}
	for _, host := range []string{hostLoopback, "host.chub.internal"} {
		if out, code := run(t, c, "loopback", fetch("http://"+host+":"+closed+"/")+" 2>&1"); code == 0 || strings.Contains(out, "hello") {
			t.Errorf("a host loopback port %s nobody opened answered through %s: %q", closed, host, out)
		}
	}
	// The API, over TLS with the server's CA (the instance does not hold it).
	api := fmt.Sprintf(`python3 -c 'import ssl, urllib.request as u; print(u.build_opener(u.ProxyHandler({}), u.HTTPSHandler(context=ssl._create_unverified_context())).open("https://%s:%s/healthz", timeout=5).status)'`, hostLoopback, apiPort)
	if out := mustRun(t, c, "loopback", api+" 2>&1"); out != "200\n" {
		t.Errorf("the API through %s:%s: %q; want 200", hostLoopback, apiPort, out)
	}
	// Other ways to the host's loopback from inside: its own loopback
	// address and a raw 127.0.0.1 do not lead out of the namespace.
	if out, code := run(t, c, "loopback", fetch("http://127.0.0.1:"+closed+"/")+" 2>&1"); code == 0 {
		t.Errorf("127.0.0.1:%s inside reached the host: %q", closed, out)
	}
}
