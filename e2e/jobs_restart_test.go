package e2e

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// TestJobsSurviveServerKill kills the server (SIGKILL) while a job runs
// and another waits in the queue: after the restart the running job has
// kept running and ends Completed with its whole log, and the queued one
// runs after it. It drives the jobs through the Go client.
func TestJobsSurviveServerKill(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "restart1" // 1 vCPU: one job at a time
	create(t, c, inst, "Standard_DS1_v2")
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
	submit("through-kill", "echo started; sleep 8; echo finished")
	submit("queued-before-kill", "echo second")
	running := waitJob("through-kill", func(j *client.Job) bool { return j.Properties.Status == chub.JobRunning })
	waitFor(t, 30*time.Second, "the job's first line", func() bool { return stdout("through-kill") == "started\n" })
	if j, err := c.GetJob(ctx(t), "", "queued-before-kill"); err != nil || j.Properties.Status != chub.JobQueued {
		t.Fatalf("second job on a 1-vCPU instance: %+v, %v; want Queued", j, err)
	}

	s.stop(syscall.SIGKILL)
	s.start()
	c = s.client()

	j := waitJob("through-kill", nil)
	if j.Properties.Status != chub.JobCompleted || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 0 {
		t.Errorf("job through a server kill: %s, exit %v, error %+v; want Completed, exit 0", j.Properties.Status, j.Properties.ExitCode, j.Properties.Error)
	}
	if got := stdout("through-kill"); got != "started\nfinished\n" {
		t.Errorf("stdout of the job through a server kill: %q; want %q (run once, to its end)", got, "started\nfinished\n")
	}
	if j.Properties.StartTime == nil || running.Properties.StartTime == nil || !j.Properties.StartTime.Equal(*running.Properties.StartTime) {
		t.Errorf("start time before the kill %v, after %v; want the same (the job kept running)", running.Properties.StartTime, j.Properties.StartTime)
	}
	q := waitJob("queued-before-kill", nil)
	if q.Properties.Status != chub.JobCompleted || stdout("queued-before-kill") != "second\n" {
		t.Errorf("job queued before the kill: %s, error %+v, stdout %q; want Completed, second", q.Properties.Status, q.Properties.Error, stdout("queued-before-kill"))
	}
	if q.Properties.StartTime == nil || j.Properties.StartTime == nil || q.Properties.StartTime.Before(*j.Properties.StartTime) {
		t.Errorf("queued job started %v, the running one %v: want the queued one after", q.Properties.StartTime, j.Properties.StartTime)
	}
	waitState(t, c, inst, chub.StateRunning, 30*time.Second)
}
