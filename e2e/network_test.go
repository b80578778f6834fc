package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// hostLoopback is where an instance reaches the host's 127.0.0.1.
const hostLoopback = "10.0.2.2"

// createWith makes an instance with settings and waits until it runs.
func createWith(t *testing.T, c *client.Client, name string, settings chub.InstanceSettings) {
	t.Helper()
	_, op, err := c.CreateCompute(ctx(t), client.CreateRequest{Name: name, Settings: settings})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := c.Wait(ctx(t), op, "", name, nil); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// hostHTTP serves a greeting on the host's 127.0.0.1 for the test's length.
func hostHTTP(t *testing.T) (port string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the host")
	}))
	t.Cleanup(srv.Close)
	return srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
}

// fetch is a shell command printing the body at url, with no proxy.
func fetch(url string) string {
	return fmt.Sprintf(`python3 -c 'import urllib.request as u; print(u.build_opener(u.ProxyHandler({})).open("%s", timeout=5).read().decode())'`, url)
}

// pastaFor lists the live pasta processes whose command line mentions dir.
func pastaFor(dir string) []string {
	var out []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), "pasta\x00") || !strings.Contains(string(b), dir) {
			continue
		}
		if st, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "status")); strings.Contains(string(st), "State:\tZ") {
			continue
		}
		out = append(out, filepath.Dir(f))
	}
	return out
}

// listeningInodes returns the socket inodes of the host's listening TCP
// sockets and bound UDP sockets.
func listeningInodes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile("/proc/net/" + f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			// TCP LISTEN is 0A; a UDP socket with a local port is bound (07).
			if (strings.HasPrefix(f, "tcp") && fs[3] == "0A") || (strings.HasPrefix(f, "udp") && fs[3] == "07") {
				out[fs[9]] = f + " " + fs[1]
			}
		}
	}
	return out
}

// socketInodes returns the inodes of the sockets process dir holds.
func socketInodes(procDir string) []string {
	var out []string
	fds, _ := os.ReadDir(filepath.Join(procDir, "fd"))
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(procDir, "fd", fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"))
		}
	}
	return out
}

// TestOutboundNetwork: an instance reaches a server on the host's loopback
// through the mapped address (on a port opened with --instance-host-ports), and keeps it across stop/start and a server
// restart without a second helper; one with outboundNetworkAccess Disabled
// cannot; no port of the host is opened for either; delete leaves no
// helper behind.
func TestOutboundNetwork(t *testing.T) {
	if _, err := os.Stat("/usr/bin/pasta"); err != nil {
		t.Skip("pasta is not installed (apt-get install passt)")
	}
	port := hostHTTP(t)
	// The host's loopback is closed to instances but for the ports the
	// admin opens (and the API's).
	s := startServer(t, "--instance-host-ports", port)
	c := s.client()
	before := listeningInodes(t)

	createWith(t, c, "net-on", chub.InstanceSettings{VMSize: "Standard_DS1_v2"})
	createWith(t, c, "net-off", chub.InstanceSettings{VMSize: "Standard_DS1_v2", OutboundNetworkAccess: "disabled"})
	ci, err := c.GetCompute(ctx(t), "", "net-off")
	if err != nil {
		t.Fatal(err)
	}
	if got := ci.Properties.Properties.OutboundNetworkAccess; got != "Disabled" {
		t.Errorf("outboundNetworkAccess = %q; want the canonical Disabled", got)
	}
	if ci, _ := c.GetCompute(ctx(t), "", "net-on"); ci.Properties.Properties.OutboundNetworkAccess != "Enabled" {
		t.Errorf("outboundNetworkAccess by default = %q; want Enabled", ci.Properties.Properties.OutboundNetworkAccess)
	}

	reach := func(when string) {
		t.Helper()
		for _, host := range []string{hostLoopback, "host.chub.internal"} {
			if out := mustRun(t, c, "net-on", fetch("http://"+host+":"+port+"/")); out != "hello from the host\n" {
				t.Fatalf("%s: from the instance to http://%s:%s/: %q", when, host, port, out)
			}
		}
		if p := pastaFor(s.dataDir); len(p) != 1 {
			t.Fatalf("%s: pasta processes of this server's instances: %v; want exactly one", when, p)
		}
	}
	reach("after create")
	if out := mustRun(t, c, "net-on", "cat /etc/resolv.conf; ls /sys/class/net"); !strings.Contains(out, "nameserver 10.0.2.3") || !strings.Contains(out, "eth0") {
		t.Errorf("resolver and interfaces with outbound network:\n%s", out)
	}
	if nodes, err := c.ListNodes(ctx(t), "", "net-on"); err != nil || len(nodes) != 1 || nodes[0].PrivateIPAddress != "10.0.2.15" {
		t.Errorf("listNodes = %+v, %v; want privateIpAddress 10.0.2.15", nodes, err)
	}

	if out, code := run(t, c, "net-off", fetch("http://"+hostLoopback+":"+port+"/")); code == 0 {
		t.Errorf("an instance with outbound network disabled reached the host: %q", out)
	}
	if out := mustRun(t, c, "net-off", "ls /sys/class/net"); strings.TrimSpace(out) != "lo" {
		t.Errorf("interfaces with outbound network disabled: %q; want lo only", out)
	}

	// No port of the host is opened for an instance: pasta holds no
	// listening or bound socket, and the processes of this server's data
	// dir listen on nothing new.
	after := listeningInodes(t)
	for _, p := range pastaFor(s.dataDir) {
		for _, ino := range socketInodes(p) {
			if l, ok := after[ino]; ok {
				t.Errorf("pasta %s listens on the host: %s", p, l)
			}
		}
	}
	ours := map[string]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), s.dataDir) {
			for _, ino := range socketInodes(filepath.Dir(f)) {
				ours[ino] = true
			}
		}
	}
	for ino, l := range after {
		if _, old := before[ino]; !old && ours[ino] {
			t.Errorf("a new listening socket of this server or its helpers: %s", l)
		}
	}

	act(t, c, "net-on", chub.OpStop)
	if p := pastaFor(s.dataDir); len(p) != 0 {
		t.Errorf("pasta of a stopped instance remains: %v", p)
	}
	act(t, c, "net-on", chub.OpStart)
	reach("after stop/start")
	s.restart()
	c = s.client()
	reach("after a server restart")

	for _, name := range []string{"net-on", "net-off"} {
		op, err := c.DeleteCompute(ctx(t), "", name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(ctx(t), op, "", name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if p := pastaFor(s.dataDir); len(p) != 0 {
		t.Errorf("pasta of a deleted instance remains: %v", p)
	}
}
