package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsQueueFourAtATime submits 8 jobs to a 4-vCPU instance: 4 run at a
// time, in submission order, the rest wait Queued; the instance shows
// JobRunning while they run, Running after.
func TestJobsQueueFourAtATime(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "queue4" // Standard_D3_v2: 4 vCPUs
	create(t, c, inst, "Standard_D3_v2")

	t.Run("eight jobs, four at a time", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		var names []string
		for i := 0; i < 8; i++ {
			name := fmt.Sprintf("q-%d", i)
			names = append(names, name)
			j := a.submit(name, commandJob(inst, "sleep 5; echo done"))
			if j.Properties.Status.Terminal() || j.Properties.Status == "" {
				t.Fatalf("job %s right after submit: %s; want an active status", name, j)
			}
		}
		rank := map[string]int{}
		for i, n := range names {
			rank[n] = i
		}
		sawFourAndFour, sawJobRunning := false, false
		deadline := time.Now().Add(90 * time.Second)
		for {
			js := a.list(inst)
			if len(js) != 8 {
				t.Fatalf("list jobs on %s: %d jobs; want 8: %v", inst, len(js), js)
			}
			byRank := make([]jobResource, 8)
			count := map[chub.JobStatus]int{}
			for _, j := range js {
				r, ok := rank[j.Name]
				if !ok {
					t.Fatalf("list jobs: unknown job %s", j.Name)
				}
				byRank[r] = j
				count[j.Properties.Status]++
			}
			if n := count[chub.JobRunning] + count[chub.JobPreparing]; n > 4 {
				t.Fatalf("%d jobs Preparing or Running on a 4-vCPU instance; want at most 4: %v", n, byRank)
			}
			// Submission order: a job that left the queue has every job
			// submitted before it out of the queue too.
			waiting := func(st chub.JobStatus) bool { return st == chub.JobQueued || st == chub.JobNotStarted }
			for i := 1; i < 8; i++ {
				if !waiting(byRank[i].Properties.Status) && waiting(byRank[i-1].Properties.Status) {
					t.Fatalf("job %s started before %s, submitted earlier: %v", byRank[i].Name, byRank[i-1].Name, byRank)
				}
			}
			if count[chub.JobRunning] == 4 && count[chub.JobQueued] == 4 && !sawFourAndFour {
				sawFourAndFour = true
				for i := 0; i < 4; i++ {
					if byRank[i].Properties.Status != chub.JobRunning || byRank[i].Properties.StartTime == nil {
						t.Errorf("job %s: %s, start time %v; want the first four Running with a start time", byRank[i].Name, byRank[i], byRank[i].Properties.StartTime)
					}
				}
				prev := 0
				for i := 4; i < 8; i++ {
					q := byRank[i].Properties
					if q.Status != chub.JobQueued {
						t.Errorf("job %s: %s; want the last four Queued", byRank[i].Name, byRank[i])
						continue
					}
					if q.QueuePosition == nil || *q.QueuePosition <= prev {
						t.Errorf("job %s: queue position %v after %d; want positions rising in submission order", byRank[i].Name, q.QueuePosition, prev)
					} else {
						prev = *q.QueuePosition
					}
					if q.StatusMessage == "" {
						t.Errorf("queued job %s has no status message saying what it waits for", byRank[i].Name)
					}
				}
				// The jobs sleep 5s: the first four still run now.
				if got := state(t, c, inst); got == chub.StateJobRunning {
					sawJobRunning = true
				} else {
					t.Errorf("instance state while 4 jobs run: %s; want JobRunning", got)
				}
			}
			if count[chub.JobCompleted]+count[chub.JobFailed]+count[chub.JobCanceled] == 8 {
				for _, j := range byRank {
					if j.Properties.Status != chub.JobCompleted || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 0 {
						t.Errorf("job %s: %s; want Completed with exit code 0", j.Name, j)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the 8 jobs did not end within 90s: %v", byRank)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !sawFourAndFour {
			t.Errorf("never saw exactly 4 jobs Running and 4 Queued")
		}
		if !sawJobRunning {
			t.Errorf("never saw the instance JobRunning")
		}
		for _, n := range []string{names[0], names[7]} {
			if got := a.logs(n, "stdout"); got != "done\n" {
				t.Errorf("stdout of %s: %q; want %q", n, got, "done\n")
			}
		}
		waitState(t, c, inst, chub.StateRunning, 30*time.Second)
	})
}
