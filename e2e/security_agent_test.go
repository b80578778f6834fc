package e2e

import (
	"bytes"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/computehub/chub/client"
)

// TestSecurityAgentSocketHijack plays root inside one user's instance
// (azureuser has passwordless sudo) replacing the agent socket the server
// dials with a symlink: to another user's instance's agent, then to a unix
// socket of the host. Whatever the link, exec on one's own instance must
// reach that instance's own agent and nothing else.
func TestSecurityAgentSocketHijack(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	malID, mal, _ := newUser(t, s, admin, "mallory")
	createFor(t, admin, "victim", "")
	createFor(t, admin, "mal", malID)
	createFor(t, admin, "mal2", malID) // for the host socket: mal's link may break it
	victimID := instanceID(t, admin, "victim")
	if _, err := admin.AssignRole(ctx(t), malID, "AzureML Data Scientist", wsID); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, mal, "mal", "hostname"); out != "mal\n" {
		t.Fatalf("hostname of mal = %q", out)
	}

	// Where the agent of an instance listened: <root>/instances/<id>/run,
	// bind-mounted at /run/chub inside the instance.
	instances := filepath.Join(s.dataDir, "runtime", "local", "instances")
	link := func(inst, target string) {
		t.Helper()
		mustRun(t, mal, inst, "sudo mkdir -p /run/chub && sudo ln -sfn '"+target+"' /run/chub/agent.sock")
	}
	check := func(inst, what string) {
		t.Helper()
		var buf bytes.Buffer
		code, err := mal.Exec(ctx(t), "", inst, client.ExecOptions{Command: []string{"hostname"}, Stdout: &buf, Stderr: &buf})
		out := buf.String()
		if err != nil {
			t.Errorf("after linking the agent socket to %s, exec on %s failed: %v", what, inst, err)
			return
		}
		if strings.Contains(out, "victim") {
			t.Errorf("after linking the agent socket to %s, exec on %s ran in the victim's instance: %q", what, inst, out)
			return
		}
		if out != inst+"\n" || code != 0 {
			t.Errorf("after linking the agent socket to %s, exec on %s = %q, exit %d; want its own hostname", what, inst, out, code)
		}
	}
	for _, target := range []string{
		filepath.Join(instances, victimID, "run", "agent.sock"), // the old design's path
		filepath.Join(instances, victimID, "agent.sock"),
	} {
		link("mal", target)
		check("mal", "the victim's socket "+target)
	}

	// A unix socket of the host: the server must never connect to it.
	sock := filepath.Join(t.TempDir(), "host.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var hits atomic.Int32
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "a host service", http.StatusTeapot)
	}))
	link("mal2", sock)
	check("mal2", "a host socket")
	// Observation (activity, applications) dials the agent too.
	s.restart()
	check("mal2", "a host socket, after a server restart")
	check("mal", "the victim's socket, after a server restart")
	if n := hits.Load(); n > 0 {
		t.Fatalf("the server connected %d times to a host unix socket an instance's root linked to", n)
	}
}
