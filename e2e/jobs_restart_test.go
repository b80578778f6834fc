package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// TestJobsSurviveServerKill kills the server (SIGKILL) while two jobs run
// and a third waits in the queue, and keeps it down until one of the two
// has ended: after the restart the ended one is recorded Completed with its
// whole log, the other is still Running and ends Completed with its whole
// log (run once), and the queued one runs after them. It drives the jobs
// through the Go client.
func TestJobsSurviveServerKill(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "restart2" // 2 vCPUs: two jobs at a time
	create(t, c, inst, "Standard_DS2_v2")
	id := instanceID(t, c, inst)
	submit := func(name, command string) {
		t.Helper()
		if _, created, err := c.CreateOrUpdateJob(ctx(t), "", name, client.JobProperties{JobType: "Command", Command: command, ComputeID: computeARM(inst)}); err != nil || !created {
			t.Fatalf("submit %s: created %v, %v", name, created, err)
		}
	}
	waitJob := func(name string, done func(*client.Job) bool) *client.Job {
		t.Helper()
		j, err := c.WaitJob(ctx(t), "", name, done, nil)
		if err != nil {
			t.Fatalf("wait for job %s: %v", name, err)
		}
		return j
	}
	running := func(j *client.Job) bool { return j.Properties.Status == chub.JobRunning }
	stdout := func(name string) string {
		t.Helper()
		r, err := c.StreamJobLogs(ctx(t), "", name, client.Stdout, 0, false)
		if err != nil {
			t.Fatalf("logs of %s: %v", name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("logs of %s: %v", name, err)
		}
		return string(b)
	}
	submit("ends-while-down", "echo started; sleep 3; echo finished-while-down")
	submit("through-kill", "echo started; sleep 15; echo finished")
	submit("queued-before-kill", "echo second")
	before := map[string]*client.Job{}
	for _, n := range []string{"ends-while-down", "through-kill"} {
		before[n] = waitJob(n, running)
		waitFor(t, 30*time.Second, n+"'s first line", func() bool { return stdout(n) == "started\n" })
	}
	if j, err := c.GetJob(ctx(t), "", "queued-before-kill"); err != nil || j.Properties.Status != chub.JobQueued {
		t.Fatalf("third job on a 2-vCPU instance: %+v, %v; want Queued", j, err)
	}

	waitFor(t, 10*time.Second, "the second job's sleep 15 in the instance", func() bool { return len(instanceProcs(id, "sleep\x0015\x00")) == 1 })

	s.stop(syscall.SIGKILL)
	// The server is down: the first job's sleep 3 ends on its own, the
	// second's sleep 15 runs on.
	waitFor(t, 30*time.Second, "the first job's sleep 3 to end with the server down", func() bool { return len(instanceProcs(id, "sleep\x003\x00")) == 0 })
	if len(instanceProcs(id, "sleep\x0015\x00")) != 1 {
		t.Fatalf("the second job's sleep 15 does not run in the instance while the server is down")
	}
	s.start()
	c = s.client()

	if j, err := c.GetJob(ctx(t), "", "through-kill"); err != nil || j.Properties.Status != chub.JobRunning {
		t.Errorf("job still running in the instance, right after the server restart: %+v, %v; want Running", j, err)
	}
	for _, n := range []string{"ends-while-down", "through-kill"} {
		j := waitJob(n, nil)
		if j.Properties.Status != chub.JobCompleted || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 0 {
			t.Errorf("job %s through a server kill: %s, exit %v, error %+v; want Completed, exit 0", n, j.Properties.Status, j.Properties.ExitCode, j.Properties.Error)
		}
		if j.Properties.StartTime == nil || before[n].Properties.StartTime == nil || !j.Properties.StartTime.Equal(*before[n].Properties.StartTime) {
			t.Errorf("job %s: start time before the kill %v, after %v; want the same (the job kept running)", n, before[n].Properties.StartTime, j.Properties.StartTime)
		}
	}
	if got := stdout("ends-while-down"); got != "started\nfinished-while-down\n" {
		t.Errorf("stdout of the job that ended while the server was down: %q; want %q", got, "started\nfinished-while-down\n")
	}
	if got := stdout("through-kill"); got != "started\nfinished\n" {
		t.Errorf("stdout of the job through a server kill: %q; want %q (run once, to its end)", got, "started\nfinished\n")
	}
	q := waitJob("queued-before-kill", nil)
	if q.Properties.Status != chub.JobCompleted || stdout("queued-before-kill") != "second\n" {
		t.Errorf("job queued before the kill: %s, error %+v, stdout %q; want Completed, second", q.Properties.Status, q.Properties.Error, stdout("queued-before-kill"))
	}
	if q.Properties.StartTime == nil || q.Properties.StartTime.Before(*before["through-kill"].Properties.StartTime) {
		t.Errorf("queued job started %v, the running ones %v: want the queued one after", q.Properties.StartTime, before["through-kill"].Properties.StartTime)
	}
	waitState(t, c, inst, chub.StateRunning, 30*time.Second)
	if t.Failed() {
		logLines(t, s, "ends-while-down", "through-kill", "queued-before-kill")
	}
}

// instanceProcs lists the host pids of instance id's live processes whose
// command line (NUL-separated) is cmdline.
func instanceProcs(id, cmdline string) []string {
	var out []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil || string(b) != cmdline {
			continue
		}
		dir := filepath.Dir(f)
		if cg, _ := os.ReadFile(filepath.Join(dir, "cgroup")); !strings.Contains(string(cg), id) {
			continue
		}
		if st, _ := os.ReadFile(filepath.Join(dir, "status")); strings.Contains(string(st), "State:\tZ") {
			continue
		}
		out = append(out, filepath.Base(dir))
	}
	return out
}
