package e2e

import (
	"strings"
	"testing"

	"github.com/computehub/chub"
)

// TestIsolationAndLimits checks that one instance sees neither another's
// files nor its processes, and that the VM size's memory limit kills a
// process over it inside the instance only.
func TestIsolationAndLimits(t *testing.T) {
	s := startServer(t)
	c := s.client()
	create(t, c, "iso-a", "Standard_B1ls") // 0.5 GB
	create(t, c, "iso-b", "Standard_B1s")

	mustRun(t, c, "iso-a", "echo secret > ~/a-only.txt; setsid bash -c 'exec -a marker-of-a sleep 300' </dev/null >/dev/null 2>&1 &")
	if out := mustRun(t, c, "iso-a", "ps -eo args"); !strings.Contains(out, "marker-of-a") {
		t.Fatalf("the marker process does not run in iso-a: %q", out)
	}
	if out, _ := run(t, c, "iso-b", "ls ~; ps -eo args; ls /work /root 2>&1"); strings.Contains(out, "a-only") || strings.Contains(out, "marker-of-a") {
		t.Fatalf("iso-b sees iso-a's file or process:\n%s", out)
	}
	if out := mustRun(t, c, "iso-b", "hostname"); strings.TrimSpace(out) != "iso-b" {
		t.Errorf("hostname in iso-b = %q", out)
	}

	// tail keeps a line without newline in memory: 700 MiB is over the 0.5 GB limit.
	out, code := run(t, c, "iso-a", "head -c 700M /dev/zero | tail -n 1 >/dev/null; echo exit=$?")
	if !strings.Contains(out, "exit=137") && code == 0 {
		t.Fatalf("allocating over the limit was not killed: exit %d, %q", code, out)
	}
	if got := state(t, c, "iso-a"); got != chub.StateRunning {
		t.Fatalf("after the OOM kill iso-a is %s; want Running", got)
	}
	if out := mustRun(t, c, "iso-a", "cat ~/a-only.txt"); out != "secret\n" {
		t.Fatalf("iso-a after OOM: %q", out)
	}
	// An allocation well inside iso-b's 1 GB limit succeeds.
	if out := mustRun(t, c, "iso-b", "head -c 200M /dev/zero | tail -n 1 | wc -c"); strings.TrimSpace(out) != "209715200" {
		t.Fatalf("a 200 MiB allocation in iso-b failed: %q", out)
	}
}
