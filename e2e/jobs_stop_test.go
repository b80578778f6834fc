package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsStopWaitsOrCancels: a plain stop waits for a running job to end;
// a job submitted to a stopped instance waits Queued for its start; a stop
// with cancelJobs=true cancels the running job, saying why; an instance
// killed under a running job (its init killed from the host) marks the job
// Failed with the reason, never lost or stuck; deleting the instance ends
// its jobs, saying so.
func TestJobsStopWaitsOrCancels(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "stops1"
	create(t, c, inst, "Standard_DS1_v2")

	t.Run("a stop waits for a running job", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		a.submit("before-stop", commandJob(inst, "sleep 6; echo finished-before-stop"))
		a.waitStatus("before-stop", chub.JobRunning, 30*time.Second)
		op, err := c.Act(ctx(t), "", inst, chub.OpStop)
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
		// The job sleeps 6s: it still runs while the instance stops.
		if j := a.get("before-stop"); j.Properties.Status != chub.JobRunning {
			t.Errorf("job right after the stop was asked for: %s; want still Running", j)
		}
		if got := state(t, c, inst); got != chub.StateStopping {
			t.Errorf("instance state while the stop waits for a job: %s; want Stopping", got)
		}
		if _, err := c.Wait(ctx(t), op, "", inst, nil); err != nil {
			t.Fatalf("stop: %v", err)
		}
		j := a.get("before-stop")
		if j.Properties.Status != chub.JobCompleted || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 0 {
			t.Errorf("job after the stop: %s; want Completed, exit 0 (the stop waited for it)", j)
		}
		if got := a.logs("before-stop", "stdout"); got != "finished-before-stop\n" {
			t.Errorf("stdout of the job the stop waited for: %q", got)
		}
		if got := state(t, c, inst); got != chub.StateStopped {
			t.Errorf("instance state after the stop: %s; want Stopped", got)
		}
	})

	t.Run("a job waits for its stopped instance", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		a.submit("while-stopped", commandJob(inst, "echo ran-after-start"))
		j := a.waitStatus("while-stopped", chub.JobQueued, 30*time.Second)
		if !strings.Contains(j.Properties.StatusMessage, inst) {
			t.Errorf("job on a stopped instance: message %q; want it to name the instance %s it waits for", j.Properties.StatusMessage, inst)
		}
		act(t, c, inst, chub.OpStart)
		j = a.waitEnd("while-stopped", 60*time.Second)
		if j.Properties.Status != chub.JobCompleted {
			t.Errorf("job submitted while stopped, after start: %s; want Completed", j)
		}
		if got := a.logs("while-stopped", "stdout"); got != "ran-after-start\n" {
			t.Errorf("stdout: %q", got)
		}
	})

	t.Run("stop with cancelJobs cancels running jobs", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		a.submit("long", commandJob(inst, "echo started; sleep 60; echo not-reached"))
		a.submit("behind-long", commandJob(inst, "echo behind"))
		a.waitStatus("long", chub.JobRunning, 30*time.Second)
		a.wait("long", 30*time.Second, "printing", func(jobResource) bool { return a.logs("long", "stdout") == "started\n" })
		a.stopCancelingJobs(c, inst)
		j := a.waitEnd("long", 30*time.Second)
		// DESIGN: cancelJobs cancels the instance's active jobs, then stops;
		// the job says why it ended.
		why := j.Properties.StatusMessage
		if j.Properties.Error != nil {
			why += " " + j.Properties.Error.Message
		}
		if j.Properties.Status != chub.JobCanceled && j.Properties.Status != chub.JobFailed || !strings.Contains(why, "stop") {
			t.Errorf("running job after stop?cancelJobs=true: %s; want it ended (Canceled) with a reason naming the stop", j)
		}
		if got := a.logs("long", "stdout"); got != "started\n" {
			t.Errorf("stdout kept of the job ended by the stop: %q; want %q", got, "started\n")
		}
		if j := a.waitEnd("behind-long", 30*time.Second); !strings.Contains(j.Properties.StatusMessage+errorMessage(j), "stop") {
			t.Errorf("queued job after stop?cancelJobs=true: %s; want it ended with a reason naming the stop", j)
		}
		if got := state(t, c, inst); got != chub.StateStopped {
			t.Errorf("instance state: %s; want Stopped", got)
		}
	})

	t.Run("an instance killed under a job fails it with the reason", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		act(t, c, inst, chub.OpStart)
		a.submit("under-kill", commandJob(inst, "echo started; sleep 60"))
		a.waitStatus("under-kill", chub.JobRunning, 30*time.Second)
		a.wait("under-kill", 30*time.Second, "printing", func(jobResource) bool { return a.logs("under-kill", "stdout") == "started\n" })
		pid := instanceInit(t, instanceID(t, c, inst))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the instance's init (host pid %d): %v", pid, err)
		}
		j := a.waitEnd("under-kill", 60*time.Second)
		if j.Properties.Status != chub.JobFailed || j.Properties.Error == nil || !strings.Contains(j.Properties.Error.Message, inst) {
			t.Errorf("job whose instance was killed: %s; want Failed with an error naming instance %s", j, inst)
		}
		if j.Properties.Error != nil && strings.Contains(j.Properties.Error.Message, "did not start") {
			t.Errorf("job whose instance was killed after it printed: error %q; want no claim that its command did not start", j.Properties.Error.Message)
		}
		if t.Failed() {
			logLines(t, s, "under-kill", "instance stopped", "instance started", "init exited", "converged")
		}
		if got := a.logs("under-kill", "stdout"); got != "started\n" {
			t.Logf("stdout of the job whose instance was killed: %q", got)
		}
	})

	t.Run("deleting the instance ends its jobs with the reason", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		waitState(t, c, inst, chub.StateRunning, 60*time.Second)
		a.submit("under-delete", commandJob(inst, "echo started; sleep 60"))
		a.submit("queued-under-delete", commandJob(inst, "echo never"))
		a.waitStatus("under-delete", chub.JobRunning, 30*time.Second)
		op, err := c.DeleteCompute(ctx(t), "", inst)
		if err != nil || op == nil {
			t.Fatalf("delete %s: operation %v, %v", inst, op, err)
		}
		if _, err := c.Wait(ctx(t), op, "", "", nil); err != nil {
			t.Fatalf("delete %s: %v", inst, err)
		}
		for _, n := range []string{"under-delete", "queued-under-delete"} {
			j := a.waitEnd(n, 30*time.Second)
			if j.Properties.Status != chub.JobCanceled && j.Properties.Status != chub.JobFailed || !strings.Contains(j.Properties.StatusMessage+errorMessage(j), "delete") {
				t.Errorf("job %s after its instance was deleted: %s; want it ended with a reason naming the delete", n, j)
			}
		}
		if got := a.logs("queued-under-delete", "stdout"); got != "" {
			t.Errorf("stdout of the queued job of a deleted instance: %q; want nothing (it never ran)", got)
		}
	})
}

// errorMessage is a job's error message, "" when it has none.
func errorMessage(j jobResource) string {
	if j.Properties.Error == nil {
		return ""
	}
	return j.Properties.Error.Message
}

// instanceInit finds the host pid of an instance's init: the process in the
// instance's cgroup whose pid in its own namespace is 1.
func instanceInit(t *testing.T, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), id) {
			continue
		}
		st, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
				var pid int
				if _, err := fmt.Sscan(f[1], &pid); err == nil {
					return pid
				}
			}
		}
	}
	t.Fatalf("no init process of instance %s on the host", id)
	return 0
}
