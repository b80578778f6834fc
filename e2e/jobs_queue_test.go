package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsQueueFourAtATime submits 8 jobs to a 4-vCPU instance: 4 run at a
// time, in submission order, the rest wait Queued; the instance shows
// JobRunning while they run, Running after; each job runs in its own
// cgroup beneath the instance's, removed when it ends. maxConcurrentJobs
// lowers the slots, never above the vCPUs.
func TestJobsQueueFourAtATime(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "queue4" // Standard_D3_v2: 4 vCPUs
	create(t, c, inst, "Standard_D3_v2")
	id := instanceID(t, c, inst)

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
				// The jobs sleep 5s: the first four still run now, each in
				// its own cgroup beneath the instance's.
				var got []string
				for end := time.Now().Add(4 * time.Second); ; {
					if got = jobCgroupsRunning(t, id, "sleep 5"); len(got) == 4 || time.Now().After(end) {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				if len(got) != 4 {
					t.Errorf("job cgroups beneath instance %s holding a job's sleep 5: %v; want 4", id, got)
				}
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
		waitFor(t, 30*time.Second, "the ended jobs' cgroups to be removed", func() bool { return len(jobCgroupDirs(id)) == 0 })
	})

	t.Run("maxConcurrentJobs", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		update := func(n int) (int, []byte) {
			code, _, data := a.call("PUT", "/computes/"+inst, "", map[string]any{"properties": map[string]any{
				"computeType": "ComputeInstance", "properties": map[string]any{"vmSize": "Standard_D3_v2", "maxConcurrentJobs": n}}})
			return code, data
		}
		for _, n := range []int{5, -1} {
			if code, data := update(n); code != http.StatusBadRequest || decodeError(data).Error.Code != "InvalidMaxConcurrentJobs" {
				t.Errorf("maxConcurrentJobs %d on a 4-vCPU size: %d %s; want 400 InvalidMaxConcurrentJobs", n, code, data)
			}
		}
		if code, data := update(2); code != http.StatusOK {
			t.Fatalf("maxConcurrentJobs 2: %d %s; want 200", code, data)
		}
		ci, err := c.GetCompute(ctx(t), "", inst)
		if err != nil || ci.Properties.Properties.MaxConcurrentJobs != 2 {
			t.Fatalf("GET after setting maxConcurrentJobs 2: %+v, %v", ci, err)
		}
		names := []string{"m-0", "m-1", "m-2", "m-3"}
		for _, n := range names {
			a.submit(n, commandJob(inst, "sleep 3"))
		}
		sawTwoAndTwo := false
		deadline := time.Now().Add(60 * time.Second)
		for ended := 0; ended < len(names); {
			if time.Now().After(deadline) {
				t.Fatalf("the 4 jobs did not end within 60s")
			}
			count := map[chub.JobStatus]int{}
			ended = 0
			var all []jobResource
			for _, j := range a.list(inst) { // one read, a consistent view (GETs one by one mix moments)
				if !slices.Contains(names, j.Name) {
					continue
				}
				all = append(all, j)
				count[j.Properties.Status]++
				if j.Properties.Status.Terminal() {
					ended++
				}
			}
			if n := count[chub.JobRunning] + count[chub.JobPreparing]; n > 2 {
				t.Fatalf("%d jobs Preparing or Running with maxConcurrentJobs 2: %v", n, all)
			}
			if count[chub.JobRunning] == 2 && count[chub.JobQueued] == 2 {
				sawTwoAndTwo = true
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !sawTwoAndTwo {
			t.Errorf("never saw 2 jobs Running and 2 Queued with maxConcurrentJobs 2")
		}
		for _, n := range names {
			if j := a.get(n); j.Properties.Status != chub.JobCompleted {
				t.Errorf("job %s: %s; want Completed", n, j)
			}
		}
	})
}

// jobCgroupDirs lists the job cgroups beneath instance id's, in every
// hierarchy.
func jobCgroupDirs(id string) []string {
	a, _ := filepath.Glob("/sys/fs/cgroup/*/chub/" + id + "/jobs/*")
	b, _ := filepath.Glob("/sys/fs/cgroup/chub/" + id + "/jobs/*")
	var out []string
	for _, d := range append(a, b...) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// jobCgroupsRunning lists, in one hierarchy (memory on cgroup v1, the
// unified one on v2), the job cgroups of instance id holding a process
// whose command line contains cmd.
func jobCgroupsRunning(t *testing.T, id, cmd string) []string {
	t.Helper()
	var out []string
	for _, d := range jobCgroupDirs(id) {
		if !strings.HasPrefix(d, "/sys/fs/cgroup/memory/") && !strings.HasPrefix(d, "/sys/fs/cgroup/chub/") {
			continue
		}
		procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, pid := range strings.Fields(string(procs)) {
			if b, _ := os.ReadFile("/proc/" + pid + "/cmdline"); strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), cmd) {
				out = append(out, filepath.Base(d))
				break
			}
		}
	}
	return out
}
