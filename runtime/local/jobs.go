package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	chub "github.com/computehub/chub"
)

// Jobs: every job an instance's agent runs gets a cgroup of its own,
// <instance cgroup>/jobs/<job>, in every hierarchy the instance has (each
// v1 controller it uses, the named systemd one, the unified one). The
// server makes and empties them from the host: the instance sees its
// cgroups read-only. Being children of the instance's cgroups, they hold
// to the instance's limits together with everything else it runs.

var _ chub.JobPlacer = (*Runtime)(nil)

// jobsCgroup is the cgroup beneath an instance's that holds its jobs'.
const jobsCgroup = "jobs"

// jobNameRE is what a job's name must match to name a cgroup.
var jobNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$`)

func validJob(job string) error {
	if !jobNameRE.MatchString(job) {
		return chub.Invalid("InvalidJobId", "job", "job id %q is not usable as a cgroup name (want %s)", job, jobNameRE)
	}
	return nil
}

// jobCgroups lists the job's cgroup dirs, one per hierarchy the instance
// has; they need not exist.
func jobCgroups(id, job string) []string {
	cgs := instanceCgroups(id)
	for i, cg := range cgs {
		cgs[i] = filepath.Join(cg, jobsCgroup, job)
	}
	return cgs
}

// PlaceJob makes job's cgroup beneath instance id's in every hierarchy and
// moves the process pid (as the instance's PID namespace numbers it) into
// it. Only a process of the instance is moved; placing again is a no-op.
func (r *Runtime) PlaceJob(ctx context.Context, id, job string, pid int) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := validJob(job); err != nil {
		return err
	}
	if pid <= 1 {
		return chub.Invalid("InvalidJobPid", "pid", "pid %d cannot be a job's: it must be a process of the instance other than its init", pid)
	}
	defer r.lock(id)()
	cgs := instanceCgroups(id)
	if len(cgs) == 0 {
		return chub.Conflict("InstanceNotRunning", "id", "instance %s has no cgroups: it does not run; start it before placing a job", id)
	}
	level, err := r.pidLevel(id)
	if err != nil {
		return fmt.Errorf("place job %s of instance %s: %w", job, id, err)
	}
	hostPID, pidfd, err := findInstancePID(cgs[0], level, pid)
	if err != nil {
		return fmt.Errorf("place job %s of instance %s: %w", job, id, err)
	}
	defer unix.Close(pidfd)
	for _, cg := range cgs {
		if err := makeJobCgroup(cg, job); err != nil {
			return fmt.Errorf("place job %s of instance %s: %w", job, id, err)
		}
	}
	for _, cg := range cgs {
		dir := filepath.Join(cg, jobsCgroup, job)
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(hostPID)), 0); err != nil {
			return fmt.Errorf("place job %s of instance %s: move process %d (host %d) into %s: %w", job, id, pid, hostPID, dir, err)
		}
	}
	// The pid was the instance's process while the pidfd held it; had it
	// died since, the number written could have been another's.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return fmt.Errorf("place job %s of instance %s: process %d ended while it was placed: %w", job, id, pid, err)
	}
	return nil
}

// pidLevel is the depth of the instance's PID namespace as this host's
// /proc shows it: the index, in a process's NSpid list, of the pid the
// instance sees.
func (r *Runtime) pidLevel(id string) (int, error) {
	c, err := libcontainer.Load(stateDir(r.cfg.Root), id)
	if err != nil {
		return 0, chub.Conflict("InstanceNotRunning", "id", "instance %s does not run (%v); start it before placing a job", id, err)
	}
	st, err := c.State()
	if err != nil {
		return 0, fmt.Errorf("the container's state: %w", err)
	}
	ns, err := readNSpid(st.InitProcessPid)
	if err != nil {
		return 0, fmt.Errorf("the instance's init (host pid %d): %w", st.InitProcessPid, err)
	}
	if len(ns) < 2 || ns[len(ns)-1] != 1 {
		return 0, fmt.Errorf("the instance's init (host pid %d) is not pid 1 of a namespace of its own (NSpid %v)", st.InitProcessPid, ns)
	}
	return len(ns) - 1, nil
}

// findInstancePID finds the host pid of the process that the instance's
// PID namespace (at level) numbers pid, among the processes of the
// instance cgroup cg and its children. It returns a pidfd that holds the
// process, so that its host pid is not reused while the caller works.
func findInstancePID(cg string, level, pid int) (int, int, error) {
	var hostPIDs []int
	err := filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := cgroupProcs(p)
		if err != nil {
			return err
		}
		hostPIDs = append(hostPIDs, pids...)
		return nil
	})
	if err != nil {
		return 0, -1, fmt.Errorf("list the instance's processes: %w", err)
	}
	for _, hp := range hostPIDs {
		ns, err := readNSpid(hp)
		if err != nil || len(ns) <= level || ns[level] != pid {
			continue
		}
		fd, err := unix.PidfdOpen(hp, 0)
		if err != nil {
			continue // gone
		}
		// Still the same process now that the pidfd holds one?
		ns, err = readNSpid(hp)
		if err == nil && len(ns) > level && ns[level] == pid && inCgroup(hp, cg) {
			if unix.PidfdSendSignal(fd, 0, nil, 0) == nil {
				return hp, fd, nil
			}
		}
		unix.Close(fd)
	}
	return 0, -1, chub.Invalid("JobPidNotInInstance", "pid", "process %d is not a process of the instance (none of its processes has that pid); give the pid the instance's own /proc shows", pid)
}

// inCgroup says whether host process pid is in cgroup dir cg (or beneath
// it), as its cgroup.procs lists show.
func inCgroup(pid int, cg string) bool {
	found := false
	filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || found {
			return nil
		}
		pids, _ := cgroupProcs(p)
		for _, q := range pids {
			if q == pid {
				found = true
			}
		}
		return nil
	})
	return found
}

// makeJobCgroup makes cg/jobs/job, ready to take a process: v1 cpuset
// children start without CPUs or memory nodes and get their parent's,
// and v1 memory must account hierarchically for the instance's limit to
// cover its jobs.
func makeJobCgroup(cg, job string) error {
	if b, err := os.ReadFile(filepath.Join(cg, "memory.use_hierarchy")); err == nil && strings.TrimSpace(string(b)) != "1" {
		return fmt.Errorf("%s: memory.use_hierarchy is %q: the instance's memory limit would not cover its jobs", cg, strings.TrimSpace(string(b)))
	}
	parent := cg
	for _, dir := range []string{filepath.Join(cg, jobsCgroup), filepath.Join(cg, jobsCgroup, job)} {
		if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("make cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || strings.TrimSpace(string(cur)) != "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(parent, f))
			if err != nil {
				return fmt.Errorf("cgroup %s: %w", parent, err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.TrimSpace(string(b))), 0); err != nil {
				return fmt.Errorf("cgroup %s: set %s: %w", dir, f, err)
			}
		}
		parent = dir
	}
	return nil
}

// KillJob kills every process in job's cgroups and removes them; a job
// without cgroups is no error.
func (r *Runtime) KillJob(ctx context.Context, id, job string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := validJob(job); err != nil {
		return err
	}
	defer r.lock(id)()
	var dirs []string
	for _, d := range jobCgroups(id, job) {
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	// Frozen, the job's processes cannot fork while they are killed.
	thaw := freezeCgroups(dirs)
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				pids, _ := cgroupProcs(p)
				for _, pid := range pids {
					if pid > 1 {
						unix.Kill(pid, unix.SIGKILL)
					}
				}
			}
			return nil
		})
	}
	// A killed process dies only once thawed.
	thaw()
	var errs []error
	for _, d := range dirs {
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kill job %s of instance %s: %w", job, id, err)
	}
	return nil
}

// freezeCgroups freezes the cgroups (v1 freezer, v2 cgroup.freeze) that
// can be, waiting up to a second for them to be frozen, and returns the
// function that thaws them. A v2 cgroup with cgroup.kill is killed
// outright instead.
func freezeCgroups(dirs []string) (thaw func()) {
	var frozen []func()
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0); err == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "freezer.state"), []byte("FROZEN"), 0); err == nil {
			frozen = append(frozen, func() { os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0) })
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if b, err := os.ReadFile(filepath.Join(d, "freezer.state")); err != nil || strings.TrimSpace(string(b)) == "FROZEN" {
					break
				}
				time.Sleep(time.Millisecond)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("1"), 0); err == nil {
			frozen = append(frozen, func() { os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0) })
		}
	}
	return func() {
		for _, f := range frozen {
			f()
		}
	}
}

// JobMemory is the memory job's processes use now, in bytes: the job
// memory cgroup's usage (v1 memory.usage_in_bytes, v2 memory.current), or
// where its cgroup has no memory controller, the sum of its processes'
// resident memory.
func (r *Runtime) JobMemory(ctx context.Context, id, job string) (int64, error) {
	if err := validID(id); err != nil {
		return 0, err
	}
	if err := validJob(job); err != nil {
		return 0, err
	}
	dirs := jobCgroups(id, job)
	var any string
	for _, d := range dirs {
		for _, f := range []string{"memory.usage_in_bytes", "memory.current"} {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("job %s of instance %s: %s: %w", job, id, f, err)
			}
			return n, nil
		}
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			any = d
		}
	}
	if any == "" {
		return 0, chub.NotFound("job", "job %s of instance %s has no cgroup: it was not placed, or it ended", job, id)
	}
	var total int64
	filepath.WalkDir(any, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			pids, _ := cgroupProcs(p)
			for _, pid := range pids {
				total += rssBytes(pid)
			}
		}
		return nil
	})
	return total, nil
}

// cgroupProcs reads the pids of a cgroup dir's cgroup.procs.
func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// readNSpid reads the NSpid line of /proc/<pid>/status: the process's pid
// in each PID namespace it is in, the host's first.
func readNSpid(pid int) ([]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseNSpid(f)
}

// parseNSpid finds the NSpid line in a /proc/<pid>/status.
func parseNSpid(f io.Reader) ([]int, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for _, s := range strings.Fields(v) {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("bad NSpid line %q", v)
			}
			out = append(out, n)
		}
		if len(out) == 0 {
			return nil, errors.New("empty NSpid line")
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("no NSpid line")
}

// rssBytes is a process's resident memory (VmRSS), 0 if unknown.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// thawJobs thaws every job cgroup of instance id, in every hierarchy: a
// KillJob cut short can leave one frozen, and a frozen process neither
// dies nor lets the instance's PID namespace end (a child frozen itself
// stays frozen when its parent thaws).
func thawJobs(id string) {
	for _, cg := range instanceCgroups(id) {
		ents, err := os.ReadDir(filepath.Join(cg, jobsCgroup))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			d := filepath.Join(cg, jobsCgroup, e.Name())
			os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0) // v1
			os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)      // v2
		}
	}
}
