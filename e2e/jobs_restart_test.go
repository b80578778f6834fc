package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsSurviveServerKill kills the server (SIGKILL) while a job runs
// and another waits in the queue: after the restart the running job has
// kept running and ends Completed with its whole log, and the queued one
// runs after it.
func TestJobsSurviveServerKill(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "restart1" // 1 vCPU: one job at a time
	create(t, c, inst, "Standard_DS1_v2")
	a := newJobAPI(t, s, s.token())
	a.submit("through-kill", commandJob(inst, "echo started; sleep 8; echo finished"))
	a.submit("queued-before-kill", commandJob(inst, "echo second"))
	running := a.waitStatus("through-kill", chub.JobRunning, 30*time.Second)
	a.wait("through-kill", 30*time.Second, "printing", func(jobResource) bool { return a.logs("through-kill", "stdout") == "started\n" })
	if j := a.get("queued-before-kill"); j.Properties.Status != chub.JobQueued {
		t.Fatalf("second job on a 1-vCPU instance: %s; want Queued", j)
	}

	s.stop(syscall.SIGKILL)
	s.start()
	c = s.client()
	a = newJobAPI(t, s, s.token())

	j := a.waitEnd("through-kill", 60*time.Second)
	if j.Properties.Status != chub.JobCompleted || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 0 {
		t.Errorf("job through a server kill: %s; want Completed, exit 0", j)
	}
	if got := a.logs("through-kill", "stdout"); got != "started\nfinished\n" {
		t.Errorf("stdout of the job through a server kill: %q; want %q (run once, to its end)", got, "started\nfinished\n")
	}
	if j.Properties.StartTime == nil || running.Properties.StartTime == nil || !j.Properties.StartTime.Equal(*running.Properties.StartTime) {
		t.Errorf("start time before the kill %v, after %v; want the same (the job kept running)", running.Properties.StartTime, j.Properties.StartTime)
	}
	q := a.waitEnd("queued-before-kill", 60*time.Second)
	if q.Properties.Status != chub.JobCompleted || a.logs("queued-before-kill", "stdout") != "second\n" {
		t.Errorf("job queued before the kill: %s, stdout %q; want Completed, second", q, a.logs("queued-before-kill", "stdout"))
	}
	if q.Properties.StartTime == nil || j.Properties.EndTime == nil || q.Properties.StartTime.Before(*j.Properties.StartTime) {
		t.Errorf("queued job started %v, the running one %v: want the queued one after", q.Properties.StartTime, j.Properties.StartTime)
	}
	waitState(t, c, inst, chub.StateRunning, 30*time.Second)
}
