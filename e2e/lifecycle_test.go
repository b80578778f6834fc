package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// TestDiskSurvivesEverythingButDelete writes into the home and under
// /usr/local, then stops, starts, restarts and restarts the server, and
// checks the files each time; after delete nothing of the instance remains.
func TestDiskSurvivesEverythingButDelete(t *testing.T) {
	s := startServer(t)
	c := s.client()
	create(t, c, "persist", "Standard_DS1_v2")
	if got := state(t, c, "persist"); got != chub.StateRunning {
		t.Fatalf("state after create = %s; want Running", got)
	}
	mustRun(t, c, "persist", "echo home-data > ~/note.txt && sudo sh -c 'echo usr-data > /usr/local/marker'")
	check := func(when string) {
		t.Helper()
		out := mustRun(t, c, "persist", "cat ~/note.txt /usr/local/marker")
		if out != "home-data\nusr-data\n" {
			t.Fatalf("after %s the files hold %q; want home-data and usr-data", when, out)
		}
	}
	act(t, c, "persist", chub.OpStop)
	if got := state(t, c, "persist"); got != chub.StateStopped {
		t.Fatalf("state after stop = %s; want Stopped", got)
	}
	act(t, c, "persist", chub.OpStart)
	check("stop/start")
	act(t, c, "persist", chub.OpRestart)
	check("restart")
	s.restart()
	c = s.client()
	if got := state(t, c, "persist"); got != chub.StateRunning {
		t.Fatalf("state after server restart = %s; want Running", got)
	}
	check("server restart")

	id := instanceID(t, c, "persist")
	op, err := c.DeleteCompute(ctx(t), "", "persist")
	if err != nil || op == nil {
		t.Fatalf("delete: op %v, err %v", op, err)
	}
	if _, err := c.Wait(ctx(t), op, "", "", nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.GetCompute(ctx(t), "", "persist"); err == nil {
		t.Fatalf("get after delete succeeded; want 404")
	}
	assertNoTrace(t, s, id)
}

// instanceID reads the runtime id of a running instance from its node id
// ("tvm-" + id).
func instanceID(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	nodes, err := c.ListNodes(ctx(t), "", name)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("listNodes %s: %v, %d nodes; want 1", name, err, len(nodes))
	}
	return strings.TrimPrefix(nodes[0].NodeID, "tvm-")
}

func createReq(name, size string) client.CreateRequest {
	return client.CreateRequest{Name: name, Settings: chub.InstanceSettings{VMSize: size}}
}

// assertNoTrace checks that no mount, cgroup, directory or process of the
// instance with this id remains.
func assertNoTrace(t *testing.T, s *server, id string) {
	t.Helper()
	if id == "" {
		t.Fatal("empty instance id")
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), id) {
		t.Errorf("a mount of instance %s remains", id)
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/*/" + id + "*")
	cgs2, _ := filepath.Glob("/sys/fs/cgroup/*/" + id + "*")
	if len(cgs)+len(cgs2) > 0 {
		t.Errorf("cgroups of instance %s remain: %v", id, append(cgs, cgs2...))
	}
	filepath.Walk(s.dataDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(info.Name(), id) {
			t.Errorf("%s of instance %s remains", p, id)
			return filepath.SkipDir
		}
		return nil
	})
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		// A zombie is dead: only its exit status waits for its parent. An
		// instance's init whose server was restarted is re-parented to this
		// machine's PID 1, which may never reap it.
		if status, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "status")); strings.Contains(string(status), "State:\tZ") {
			continue
		}
		if strings.Contains(string(b), id) {
			t.Errorf("process %s of instance %s remains", filepath.Dir(p), id)
		}
	}
}

// TestCrashMidOperationConverges kills the server with SIGKILL right after
// create, start and stop are accepted, restarts it and checks that every
// operation ends and the instance reaches the state asked for.
func TestCrashMidOperationConverges(t *testing.T) {
	s := startServer(t)
	cases := []struct {
		op   chub.OperationName
		want chub.State
	}{
		{chub.OpCreate, chub.StateRunning},
		{chub.OpStop, chub.StateStopped},
		{chub.OpStart, chub.StateRunning},
	}
	for _, tc := range cases {
		c := s.client()
		var statusURL string
		if tc.op == chub.OpCreate {
			_, op, err := c.CreateCompute(ctx(t), createReq("crashy", "Standard_DS1_v2"))
			if err != nil {
				t.Fatal(err)
			}
			statusURL = op.StatusURL
		} else {
			op, err := c.Act(ctx(t), "", "crashy", tc.op)
			if err != nil {
				t.Fatal(err)
			}
			statusURL = op.StatusURL
		}
		s.stop(syscall.SIGKILL)
		s.start()
		c = s.client()
		op, err := c.Operation(ctx(t), statusURL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(ctx(t), op, "", "crashy", nil); err != nil {
			t.Fatalf("%s after a crash: %v", tc.op, err)
		}
		if got := state(t, c, "crashy"); got != tc.want {
			t.Fatalf("after a crash during %s the state is %s; want %s", tc.op, got, tc.want)
		}
	}
	if out := mustRun(t, s.client(), "crashy", "echo alive"); out != "alive\n" {
		t.Fatalf("exec after crashes: %q", out)
	}
}
