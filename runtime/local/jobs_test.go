package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	chub "github.com/computehub/chub"
	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/runtime/runtimetest"
	"github.com/computehub/chub/streamproto"
)

// jobDirs lists the job's cgroup dirs on the host, in every hierarchy.
func jobDirs(t *testing.T, id, job string) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/chub/" + id + "/jobs/" + job, "/sys/fs/cgroup/*/chub/" + id + "/jobs/" + job} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

// instanceDirs lists the instance's cgroup dirs on the host.
func instanceDirs(id string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/chub/" + id, "/sys/fs/cgroup/*/chub/" + id} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

func procsOf(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatalf("read %s/cgroup.procs: %v", dir, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	return pids
}

// inInstance is the pid the instance's namespace gives host process pid.
func inInstance(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// gone says whether host process pid has ended (zombies count as ended).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// startHeld starts, in the instance, a shell that writes its pid to
// /tmp/<name>.pid and waits on the fifo /tmp/<name>.go before it forks a
// tree: a child, a child in a session of its own, and a double-forked
// orphan. It returns the shell's pid as the instance sees it.
func startHeld(t *testing.T, rt *local.Runtime, id, name string) int {
	t.Helper()
	script := fmt.Sprintf(`mkfifo /tmp/%[1]s.go && (setsid sh -c 'echo $$ > /tmp/%[1]s.pid; read x < /tmp/%[1]s.go; sleep 1000 & setsid sleep 1000 & (setsid sleep 1002 &); echo forked > /tmp/%[1]s.forked; wait' >/dev/null 2>&1 </dev/null &)
for i in $(seq 200); do [ -s /tmp/%[1]s.pid ] && break; sleep 0.01; done; cat /tmp/%[1]s.pid`, name)
	out := runtimetest.Sh(t, rt, id, "", script)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("the held shell's pid: %q", out)
	}
	return pid
}

// release lets the held shell fork its tree and waits until it has.
func release(t *testing.T, rt *local.Runtime, id, name string) {
	t.Helper()
	runtimetest.Sh(t, rt, id, "", fmt.Sprintf(`echo go > /tmp/%[1]s.go; for i in $(seq 500); do [ -e /tmp/%[1]s.forked ] && exit 0; sleep 0.01; done; exit 1`, name))
	// The orphan is forked by a subshell: let it be.
	runtimetest.Sh(t, rt, id, "", `for i in $(seq 500); do pgrep -f "sleep 1002" >/dev/null && exit 0; sleep 0.01; done; exit 1`)
}

func TestJobPlaceAndKill(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.Spec(t)
	runtimetest.Started(t, rt, spec)
	id := spec.ID
	const job = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"

	// Another process of the instance, outside the job: it must survive.
	other := strings.TrimSpace(runtimetest.Sh(t, rt, id, "", `(sleep 1001 >/dev/null 2>&1 </dev/null & echo $! > /tmp/other.pid); sleep 0.1; cat /tmp/other.pid`))
	pid := startHeld(t, rt, id, "job")

	if err := rt.PlaceJob(ctx, id, job, pid); err != nil {
		t.Fatalf("PlaceJob(%d) = %v", pid, err)
	}
	// Again: a no-op.
	if err := rt.PlaceJob(ctx, id, job, pid); err != nil {
		t.Fatalf("PlaceJob again = %v; want nil", err)
	}
	dirs := jobDirs(t, id, job)
	if got, want := len(dirs), len(instanceDirs(id)); got != want || got == 0 {
		t.Fatalf("job cgroups %v: %d; want one per instance hierarchy (%d)", dirs, got, want)
	}
	t.Logf("job cgroups: %v", dirs)
	var hostPID int
	for _, d := range dirs {
		pids := procsOf(t, d)
		if len(pids) != 1 || inInstance(pids[0]) != pid {
			t.Fatalf("%s/cgroup.procs = %v; want the one host pid of instance pid %d", d, pids, pid)
		}
		hostPID = pids[0]
	}
	// The instance sees its process in the job's cgroup, read-only.
	if got := runtimetest.Sh(t, rt, id, "", fmt.Sprintf("cat /proc/%d/cgroup", pid)); !strings.Contains(got, "/jobs/"+job) {
		t.Errorf("the instance's /proc/%d/cgroup = %q; want it in /jobs/%s", pid, got, job)
	}
	runtimetest.Sh(t, rt, id, "root", fmt.Sprintf("! mkdir /sys/fs/cgroup/pids/jobs/x 2>/dev/null && ! echo 1 > /sys/fs/cgroup/pids/jobs/%s/cgroup.procs 2>/dev/null", job))

	// What the job forks after it is placed stays in its cgroup.
	release(t, rt, id, "job")
	var treePIDs []int
	for _, d := range dirs {
		pids := procsOf(t, d)
		var cmds []string
		for _, p := range pids {
			cmds = append(cmds, cmdline(p))
		}
		slices.Sort(cmds)
		want := []string{"sh -c echo $$ > /tmp/job.pid; read x < /tmp/job.go; sleep 1000 & setsid sleep 1000 & (setsid sleep 1002 &); echo forked > /tmp/job.forked; wait", "sleep 1000", "sleep 1000", "sleep 1002"}
		if !slices.Equal(cmds, want) {
			t.Errorf("%s holds %q; want %q", d, cmds, want)
		}
		treePIDs = pids
	}
	if !slices.Contains(treePIDs, hostPID) {
		t.Errorf("the job's cgroup lost its first process %d: %v", hostPID, treePIDs)
	}
	// The instance's memory limit holds for its jobs (v1: hierarchically).
	limits := 0
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "memory.stat"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "hierarchical_memory_limit "); ok {
				limits++
				if got, _ := strconv.ParseInt(v, 10, 64); got != spec.MemoryBytes {
					t.Errorf("%s: hierarchical_memory_limit %d; want the instance's %d", d, got, spec.MemoryBytes)
				}
			}
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/tasks"); err == nil && limits != 1 {
		t.Errorf("found %d hierarchical_memory_limit lines in the job's v1 memory cgroup; want 1", limits)
	}
	mem, err := rt.JobMemory(ctx, id, job)
	if err != nil || mem <= 0 {
		t.Errorf("JobMemory = %d, %v; want > 0", mem, err)
	}

	if err := rt.KillJob(ctx, id, job); err != nil {
		t.Fatalf("KillJob = %v", err)
	}
	for _, p := range treePIDs {
		if !gone(p) {
			t.Errorf("process %d (%s) of the job survives KillJob", p, cmdline(p))
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after KillJob, %s: %v; want it gone", d, err)
		}
	}
	runtimetest.Sh(t, rt, id, "", "kill -0 "+other)
	if err := rt.KillJob(ctx, id, job); err != nil {
		t.Errorf("KillJob of a removed job = %v; want nil", err)
	}
	if _, err := rt.JobMemory(ctx, id, job); !chub.IsNotFound(err) {
		t.Errorf("JobMemory of a removed job = %v; want not found", err)
	}
}

// PlaceJob moves only a process of the instance, and only into a cgroup
// a job's name can make.
func TestJobPlaceRefused(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.Spec(t)
	runtimetest.Started(t, rt, spec)
	id := spec.ID
	pid := startHeld(t, rt, id, "job")

	// A process of a second instance, numbered beyond every pid the first has.
	spec2 := runtimetest.Spec(t)
	runtimetest.Started(t, rt, spec2)
	runtimetest.Sh(t, rt, spec2.ID, "", "for i in $(seq 300); do /bin/true; done")
	foreign := startHeld(t, rt, spec2.ID, "foreign")
	own := func(n int) bool {
		res := runtimetest.Sh(t, rt, id, "", fmt.Sprintf("[ -e /proc/%d ] && echo yes || echo no", n))
		return strings.TrimSpace(res) == "yes"
	}
	if own(foreign) {
		t.Fatalf("instance %s has a process %d too: the foreign pid is not foreign", id, foreign)
	}
	self := os.Getpid()
	if own(self) {
		t.Fatalf("instance %s has a process %d too: the test's pid is not foreign", id, self)
	}

	tests := []struct {
		name string
		id   string
		job  string
		pid  int
		code string
	}{
		{"another instance's process", id, "j1", foreign, "JobPidNotInInstance"},
		{"a host process", id, "j1", self, "JobPidNotInInstance"},
		{"the instance's init", id, "j1", 1, "InvalidJobPid"},
		{"pid 0", id, "j1", 0, "InvalidJobPid"},
		{"negative pid", id, "j1", -4, "InvalidJobPid"},
		{"job with a slash", id, "a/b", pid, "InvalidJobId"},
		{"job ..", id, "..", pid, "InvalidJobId"},
		{"job climbing", id, "../../x", pid, "InvalidJobId"},
		{"empty job", id, "", pid, "InvalidJobId"},
		{"job with a dot", id, "a.b", pid, "InvalidJobId"},
		{"job too long", id, strings.Repeat("a", 65), pid, "InvalidJobId"},
		{"job starting with -", id, "-a", pid, "InvalidJobId"},
		{"bad instance id", "../" + id, "j1", pid, "InvalidInstanceId"},
		{"instance that does not run", "rt-absent-instance", "j1", pid, "InstanceNotRunning"},
	}
	for _, tt := range tests {
		err := rt.PlaceJob(ctx, tt.id, tt.job, tt.pid)
		var ce *chub.Error
		if !errors.As(err, &ce) || ce.Code != tt.code {
			t.Errorf("%s: PlaceJob(%q, %q, %d) = %v; want a %s error", tt.name, tt.id, tt.job, tt.pid, err, tt.code)
		}
	}
	for _, d := range append(jobDirs(t, id, "*"), jobDirs(t, spec2.ID, "*")...) {
		t.Errorf("a refused PlaceJob left %s", d)
	}
	// Both held shells are where they were.
	for _, p := range []struct{ id, name string }{{id, "job"}, {spec2.ID, "foreign"}} {
		if got := runtimetest.Sh(t, rt, p.id, "", fmt.Sprintf("cat /proc/$(cat /tmp/%s.pid)/cgroup", p.name)); strings.Contains(got, "/jobs/") {
			t.Errorf("instance %s: the held shell moved: %q", p.id, got)
		}
	}
	// The right length is fine.
	if err := rt.PlaceJob(ctx, id, strings.Repeat("a", 64), pid); err != nil {
		t.Errorf("PlaceJob with a 64-character job = %v; want nil", err)
	}
}

// Stop and Destroy remove an instance's job cgroups with its own, even a
// frozen one.
func TestJobStopRemovesCgroups(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.Spec(t)
	runtimetest.Started(t, rt, spec)
	id := spec.ID
	for round, end := range []func() error{
		func() error { return rt.Stop(ctx, id, 5*time.Second) },
		func() error { return rt.Destroy(ctx, id) },
	} {
		if round > 0 {
			if err := rt.Start(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}
		runtimetest.Sh(t, rt, id, "", "rm -f /tmp/a.* /tmp/b.*")
		for _, job := range []string{"a", "b"} {
			pid := startHeld(t, rt, id, job)
			if err := rt.PlaceJob(ctx, id, job, pid); err != nil {
				t.Fatalf("round %d: PlaceJob(%s) = %v", round, job, err)
			}
			release(t, rt, id, job)
		}
		// Job b is left frozen, as a KillJob cut short would leave it.
		for _, d := range jobDirs(t, id, "b") {
			os.WriteFile(filepath.Join(d, "freezer.state"), []byte("FROZEN"), 0)
			os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("1"), 0)
		}
		if err := end(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, l := range runtimetest.HostTraces(id) {
			t.Errorf("round %d: after the instance ended: %s", round, l)
		}
		if d := instanceDirs(id); len(d) > 0 {
			t.Errorf("round %d: cgroups left: %v", round, d)
		}
	}
}

// BenchmarkPlaceJob times PlaceJob of a held process and KillJob of it.
func BenchmarkPlaceJob(b *testing.B) {
	rt := newRuntime(b)
	ctx := context.Background()
	spec := benchSpec(b)
	must(b, rt.Start(ctx, spec))
	defer rt.Destroy(ctx, spec.ID)
	var place, kill time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		res, err := runtimetest.Exec(ctx, rt, spec.ID, streamproto.ExecRequest{Command: []string{"sh", "-c", "(sleep 1000 >/dev/null 2>&1 </dev/null & echo $!)"}}, nil)
		must(b, err)
		pid, err := strconv.Atoi(strings.TrimSpace(res.Stdout))
		must(b, err)
		job := fmt.Sprintf("j%d", n)
		n++
		b.StartTimer()
		t := time.Now()
		must(b, rt.PlaceJob(ctx, spec.ID, job, pid))
		place += time.Since(t)
		t = time.Now()
		must(b, rt.KillJob(ctx, spec.ID, job))
		kill += time.Since(t)
	}
	b.ReportMetric(float64(place.Microseconds())/float64(n)/1000, "place-ms")
	b.ReportMetric(float64(kill.Microseconds())/float64(n)/1000, "kill-ms")
}
