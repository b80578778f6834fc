package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsCancelAndTimeout: a cancel ends a job's whole process tree
// (background children, a new session, one that ignores SIGTERM, a
// double-forked daemon) and only it; a timeout ends a job Failed with
// JobTimeout and the limit; the instance's memory limit holds for its jobs.
func TestJobsCancelAndTimeout(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "cancel2"
	create(t, c, inst, "Standard_DS2_v2")
	// pids lists the instance's processes whose whole command line
	// matches the regexp (pgrep -f anchored, so no shell's command
	// line that merely mentions it matches).
	pids := func(t *testing.T, re string) string {
		t.Helper()
		out, code := run(t, c, inst, "pgrep -a -f '"+re+"'")
		if code > 1 {
			t.Fatalf("pgrep in the instance: exit %d: %s", code, out)
		}
		return out
	}

	t.Run("cancel ends the whole tree and only it", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		a.submit("keeper", commandJob(inst, "echo keeping; sleep 40; echo kept"))
		a.submit("victim", commandJob(inst, `sleep 1000 &
setsid sleep 1001 &
sh -c "trap '' TERM; exec sleep 1000" &
( setsid sh -c 'sleep 1000 & sleep 1001 & wait' </dev/null >/dev/null 2>&1 & )
echo ready
wait`))
		a.waitStatus("keeper", chub.JobRunning, 30*time.Second)
		a.waitStatus("victim", chub.JobRunning, 30*time.Second)
		// Outside any job: a process of the user's own, in its own session.
		run(t, c, inst, "setsid nohup sleep 1002 </dev/null >/dev/null 2>&1 &")
		var before string
		waitFor(t, 30*time.Second, "the victim's five sleeps", func() bool {
			before = pids(t, "^sleep 100[01]$")
			return strings.Count(before, "\n") == 5
		})
		outsider := pids(t, "^sleep 1002$") != ""
		t.Logf("the victim's processes before the cancel:\n%sa process outside any job: %v", before, outsider)
		a.cancel("victim")
		j := a.waitEnd("victim", 60*time.Second)
		if j.Properties.Status != chub.JobCanceled {
			t.Errorf("canceled job: %s; want Canceled", j)
		}
		if left := pids(t, "^sleep 100[01]$"); left != "" {
			t.Errorf("processes of the canceled job remain in the instance:\n%s(before the cancel:\n%s)", left, before)
		}
		if got := a.logs("victim", "stdout"); got != "ready\n" {
			t.Errorf("stdout kept of the canceled job: %q; want %q", got, "ready\n")
		}
		// The other job and the user's own process are untouched.
		if j := a.get("keeper"); j.Properties.Status != chub.JobRunning {
			t.Errorf("the other job after the cancel: %s; want still Running", j)
		}
		if pids(t, "^sleep 40$") == "" {
			t.Errorf("the other job's sleep 40 is gone after the cancel of another job")
		}
		if outsider && pids(t, "^sleep 1002$") == "" {
			t.Errorf("a process of the user's own, outside any job, is gone after a job's cancel")
		}
		run(t, c, inst, "pkill -f '^sleep 1002$'")
		// A cancel of an ended job is accepted and changes nothing.
		a.cancel("victim")
		if j := a.get("victim"); j.Properties.Status != chub.JobCanceled {
			t.Errorf("job after a second cancel: %s; want Canceled", j)
		}
		a.cancel("keeper")
		if j := a.waitEnd("keeper", 60*time.Second); j.Properties.Status != chub.JobCanceled {
			t.Errorf("keeper after its cancel: %s; want Canceled", j)
		}
		if pids(t, "^sleep 40$") != "" {
			t.Errorf("the keeper's sleep 40 remains after its cancel")
		}
	})

	t.Run("timeout", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		job := commandJob(inst, "echo sleeping; sleep 60")
		job["limits"] = map[string]any{"jobLimitsType": "Command", "timeout": "PT3S"}
		j := a.submit("slow", job)
		if to, _ := j.Properties.Limits["timeout"].(string); to != "PT3S" {
			t.Errorf("limits of the submitted job: %v; want timeout PT3S", j.Properties.Limits)
		}
		j = a.waitEnd("slow", 60*time.Second)
		if j.Properties.Status != chub.JobFailed || j.Properties.Error == nil || j.Properties.Error.Code != "JobTimeout" || !strings.Contains(j.Properties.Error.Message, "PT3S") {
			t.Errorf("job past its timeout: %s; want Failed, error JobTimeout naming the limit PT3S", j)
		}
		if got := a.logs("slow", "stdout"); got != "sleeping\n" {
			t.Errorf("stdout of the timed-out job: %q", got)
		}
		if left := pids(t, "^sleep 60$"); left != "" {
			t.Errorf("the timed-out job's sleep remains:\n%s", left)
		}
	})

	t.Run("the instance's memory limit holds for its jobs", func(t *testing.T) {
		const small = "small1" // Standard_B1ls: 0.5 GiB
		create(t, c, small, "Standard_B1ls")
		a := newJobAPI(t, s, s.token())
		// 1 GiB written, twice the instance's memory.
		a.submit("hog", commandJob(small, `python3 -c 'b = b"x" * (1 << 30); print(len(b))'`))
		j := a.waitEnd("hog", 120*time.Second)
		if j.Properties.Status != chub.JobFailed || j.Properties.ExitCode == nil || *j.Properties.ExitCode == 0 {
			t.Errorf("job writing 1 GiB on a 0.5 GiB instance: %s; want Failed with a non-zero exit code (killed by the instance's memory limit)", j)
		}
		if out := a.logs("hog", "stdout"); out != "" {
			t.Errorf("the hog printed %q: it got its 1 GiB", out)
		}
		if got := state(t, c, small); got != chub.StateRunning {
			t.Errorf("instance after its job hit the memory limit: %s; want Running", got)
		}
		if out := mustRun(t, c, small, "echo alive"); out != "alive\n" {
			t.Errorf("exec after the job hit the memory limit: %q", out)
		}
	})
}
