package local_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/computehub/chub/runtime/runtimetest"
)

// The agent's socket lies in the instance directory, not in anything the
// instance sees; DialAgent connects only to a socket of root's there and
// follows no link. An instance directory of the old layout (run/, once
// bind-mounted at /run/chub) still starts.
func TestAgentSocket(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.Spec(t)
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer rt.Destroy(ctx, spec.ID)
	dir := filepath.Join(imageRoot(), "instances", spec.ID)
	// The old layout: a run/ dir with a stale socket name in it.
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "run", "agent.sock"), nil, 0o600)
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); !os.IsNotExist(err) {
		t.Errorf("the old run/ dir remains after a start: %v", err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "agent.sock"))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the agent's socket: %v, %v; want a socket, mode 0600", fi, err)
	}
	// Nothing inside sees it, nor /run/chub.
	if out := runtimetest.Sh(t, rt, spec.ID, "root", "test -e /run/chub && echo /run/chub exists; grep -c agent.sock /proc/self/mountinfo || true"); out != "0\n" {
		t.Errorf("inside the instance:\n%s", out)
	}

	// A link where the socket was, to a listener of the host, is not
	// followed.
	var hits atomic.Int32
	host := filepath.Join(t.TempDir(), "host.sock")
	ln, err := net.Listen("unix", host)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	sock := filepath.Join(dir, "agent.sock")
	if err := os.Rename(sock, sock+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, sock); err != nil {
		t.Fatal(err)
	}
	if c, err := rt.DialAgent(ctx, spec.ID); err == nil {
		c.Close()
		t.Errorf("DialAgent followed a link to a host socket")
	}
	// Nor a socket someone other than root made.
	os.Remove(sock)
	other, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Lchown(sock, 1000, 1000)
	if c, err := rt.DialAgent(ctx, spec.ID); err == nil {
		c.Close()
		t.Errorf("DialAgent connected to a socket owned by uid 1000")
	}
	other.Close()
	if n := hits.Load(); n > 0 {
		t.Errorf("the host listener got %d connections", n)
	}
	os.Remove(sock)
	if err := os.Rename(sock+".real", sock); err != nil {
		t.Fatal(err)
	}
	if got := runtimetest.Sh(t, rt, spec.ID, "", "echo back"); got != "back\n" {
		t.Errorf("exec with the real socket back = %q", got)
	}
}

// A server killed in the middle of libcontainer's create leaves a state dir
// without state and a cgroup, perhaps with a process in it: Start clears
// them rather than failing with "container with given ID already exists",
// and Destroy leaves none of them.
func TestStartClearsDeadContainer(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.Spec(t)
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer rt.Destroy(ctx, spec.ID)
	if err := os.MkdirAll(filepath.Join(imageRoot(), "state", spec.ID), 0o711); err != nil {
		t.Fatal(err)
	}
	cg := "/sys/fs/cgroup/pids/chub/" + spec.ID
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		cg = "/sys/fs/cgroup/chub/" + spec.ID
	}
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	stray := exec.Command("sleep", "600")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { stray.Wait(); close(exited) }()
	defer stray.Process.Kill()
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(stray.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatalf("Start over a half-created container: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("a process left in the instance's cgroup still runs")
	}
	if got := runtimetest.Sh(t, rt, spec.ID, "", "echo up"); got != "up\n" {
		t.Errorf("exec = %q", got)
	}
	if err := rt.Destroy(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	// Destroy of a container that is only a state dir and a cgroup.
	os.MkdirAll(filepath.Join(imageRoot(), "state", spec.ID), 0o711)
	os.MkdirAll(cg, 0o755)
	if err := rt.Destroy(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	for _, l := range runtimetest.HostTraces(spec.ID) {
		t.Errorf("after Destroy: %s", l)
	}
	for _, p := range []string{filepath.Join(imageRoot(), "state", spec.ID), filepath.Join(imageRoot(), "instances", spec.ID), cg} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("after Destroy %s remains (%v)", p, err)
		}
	}
}
