package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/computehub/chub/jobproto"
)

// superviseRequest is what the agent hands a job's supervisor on its
// stdin: everything it needs, so it reads nothing an instance's user can
// write.
type superviseRequest struct {
	// Dir is the job's directory (Root/<id>): wd/, logs/, status.json.
	Dir  string        `json:"dir"`
	Spec jobproto.Spec `json:"spec"`
	UID  uint32        `json:"uid"`
	GID  uint32        `json:"gid"`
	// Groups are the user's supplementary groups.
	Groups []uint32 `json:"groups,omitempty"`
	// Env is the command's whole environment.
	Env []string `json:"env"`
	// Grace is how long processes have between SIGTERM and SIGKILL.
	Grace time.Duration `json:"grace"`
}

// goFD is the supervisor's inherited fd the agent writes "g" to (and
// closes) to let the command run; closed without it, the job is canceled
// before it started.
const goFD = 3

// maxSuperviseRequest bounds the request read from the agent.
const maxSuperviseRequest = 4 << 20

// supervisorDrain is how long output may still be read once every process
// of the job is gone (a process may have passed its pipe to another).
const supervisorDrain = 2 * time.Second

// Supervise runs one job: `chub agent job-supervise <id>`, started by the
// agent with the request on stdin and the go pipe on fd 3. It makes itself
// the subreaper of everything the command starts, waits for go, runs
// `bash -lc COMMAND` as the job's user in its own session, copies its
// output into the logs, ends every leftover process when the command ends
// (and the whole tree on SIGTERM or at the time-out), writes status.json
// and returns.
func Supervise(ctx context.Context, args []string) error {
	data, err := io.ReadAll(io.LimitReader(os.Stdin, maxSuperviseRequest))
	if err != nil {
		return fmt.Errorf("job supervisor: reading the request: %w", err)
	}
	var req superviseRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return fmt.Errorf("job supervisor: the request: %w", err)
	}
	if req.Dir == "" || !jobproto.IDPattern.MatchString(req.Spec.ID) {
		return errors.New("job supervisor: the request names no job")
	}
	if req.Grace <= 0 {
		req.Grace = 5 * time.Second
	}
	st := runSupervised(ctx, &req)
	if err := writeStatus(req.Dir, st); err != nil {
		return fmt.Errorf("job supervisor: %w", err)
	}
	return nil
}

// runSupervised runs the job and returns its final status.
func runSupervised(ctx context.Context, req *superviseRequest) jobproto.Status {
	st := jobproto.Status{ID: req.Spec.ID, State: jobproto.StateExited}
	fail := func(format string, args ...any) jobproto.Status {
		st.Error = truncate(fmt.Sprintf(format, args...), jobproto.MaxError)
		st.EndedAt = time.Now().UTC()
		return st
	}
	// Orphans of the command become the supervisor's children, so that
	// every process of the job stays in its tree.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail("the job's supervisor: PR_SET_CHILD_SUBREAPER: %v", err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	// No signal.Ignore: an ignored signal stays ignored in the command.

	// Held until the agent says go.
	gone := make(chan bool, 1)
	go func() {
		f := os.NewFile(goFD, "go")
		if f == nil {
			gone <- false
			return
		}
		defer f.Close()
		var b [1]byte
		n, _ := f.Read(b[:])
		gone <- n == 1 && b[0] == 'g'
	}()
	select {
	case ok := <-gone:
		if !ok {
			return endedBefore(req, &st, fail)
		}
	case <-term:
		return endedBefore(req, &st, fail)
	case <-ctx.Done():
		return endedBefore(req, &st, fail)
	}

	logDir := filepath.Join(req.Dir, "logs")
	openLog := func(name string) (*os.File, error) {
		return os.OpenFile(filepath.Join(logDir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	}
	stdoutF, err1 := openLog(jobproto.StreamStdout + ".txt")
	stderrF, err2 := openLog(jobproto.StreamStderr + ".txt")
	allF, err3 := openLog(jobproto.StreamLog + ".txt")
	defer func() {
		for _, f := range []*os.File{stdoutF, stderrF, allF} {
			if f != nil {
				f.Close()
			}
		}
	}()
	if err := errors.Join(err1, err2, err3); err != nil {
		return fail("the job's logs: %v", err)
	}

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail("the job's stdin: %v", err)
	}
	outR, outW, err1 := os.Pipe()
	errR, errW, err2 := os.Pipe()
	if err := errors.Join(err1, err2); err != nil {
		return fail("the job's pipes: %v", err)
	}
	wd := filepath.Join(req.Dir, "wd")
	shell, err := lookPath("bash", defaultPath, wd)
	if err != nil {
		shell = "/bin/sh"
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	if req.UID != 0 || req.GID != 0 {
		attr.Credential = &syscall.Credential{Uid: req.UID, Gid: req.GID, Groups: req.Groups}
	}

	// Every child is reaped here; the command's status goes to cmdExit.
	var cmdPid int
	var pidMu sync.Mutex
	cmdExit := make(chan syscall.WaitStatus, 1)
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	pidMu.Lock()
	p, err := os.StartProcess(shell, []string{shell, "-lc", req.Spec.Command}, &os.ProcAttr{
		Dir: wd, Env: req.Env, Files: []*os.File{devnull, outW, errW}, Sys: attr,
	})
	devnull.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		pidMu.Unlock()
		outR.Close()
		errR.Close()
		return fail("the command did not start: %v", err)
	}
	cmdPid = p.Pid
	p.Release()
	pidMu.Unlock()
	st.StartedAt = time.Now().UTC()
	go reapChildren(sigchld, func(pid int, ws syscall.WaitStatus) {
		pidMu.Lock()
		defer pidMu.Unlock()
		if pid == cmdPid {
			cmdExit <- ws
		}
	})

	var logMu sync.Mutex
	var copies sync.WaitGroup
	copyOut := func(r *os.File, f *os.File) {
		defer copies.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				logMu.Lock()
				f.Write(buf[:n])
				allF.Write(buf[:n])
				logMu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}
	copies.Add(2)
	go copyOut(outR, stdoutF)
	go copyOut(errR, stderrF)

	var timeout <-chan time.Time
	if req.Spec.Timeout > 0 {
		t := time.NewTimer(req.Spec.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var ws syscall.WaitStatus
	exited := false
	select {
	case ws = <-cmdExit:
		exited = true
	case <-term:
		st.Canceled = true
	case <-ctx.Done():
		st.Canceled = true
	case <-timeout:
		st.TimedOut = true
	}
	// The job ends with its command: whatever it left behind goes too.
	stuck := killDescendants(req.Grace)
	if !exited {
		select {
		case ws = <-cmdExit:
			exited = true
		case <-time.After(time.Second):
		}
	}
	if exited {
		code := exitCode(ws)
		st.ExitCode = &code
	}
	if st.Canceled && instanceStopping(req) {
		st.Canceled = false
		st.Error = errInstanceStopped
	}
	switch {
	case st.TimedOut:
		st.Error = fmt.Sprintf("the job ran longer than its time-out of %v and was ended", req.Spec.Timeout)
	case st.Canceled:
		st.Error = "the job was canceled"
	}
	if len(stuck) > 0 {
		st.Error = truncate(strings.TrimPrefix(st.Error+"; ", "; ")+fmt.Sprintf("processes %v of the job would not die", stuck), jobproto.MaxError)
	}

	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(supervisorDrain):
		outR.Close()
		errR.Close()
		<-done
	}
	outR.Close()
	errR.Close()
	st.EndedAt = time.Now().UTC()
	return st
}

// stoppingMark is the file the agent puts in a job's directory before it
// ends the job because the instance stops.
const stoppingMark = "stopping"

// errInstanceStopped is the error of a job ended by the instance's stop.
const errInstanceStopped = "the instance stopped while the job ran"

// instanceStopping reports whether the agent marked the job as ended by
// the instance's stop.
func instanceStopping(req *superviseRequest) bool {
	_, err := os.Lstat(filepath.Join(req.Dir, stoppingMark))
	return err == nil
}

// endedBefore is the status of a job ended before its command started.
func endedBefore(req *superviseRequest, st *jobproto.Status, fail func(string, ...any) jobproto.Status) jobproto.Status {
	if instanceStopping(req) {
		return fail(errInstanceStopped + " (before its command started)")
	}
	st.Canceled = true
	return fail("the job was canceled before its command started")
}

// reapChildren waits for every child of the process, forever, telling
// report of each.
func reapChildren(sigchld <-chan os.Signal, report func(pid int, ws syscall.WaitStatus)) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
		case err != nil: // ECHILD: none now; orphans may come
			select {
			case <-sigchld:
			case <-time.After(100 * time.Millisecond):
			}
		case pid > 0:
			report(pid, ws)
		}
	}
}

// procEntry is one process as /proc/<pid>/stat shows it.
type procEntry struct {
	pid, ppid int
	state     byte
	start     uint64 // start time: with pid, names one process
}

// readProcStat parses /proc/<pid>/stat.
func readProcStat(pid int) (procEntry, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procEntry{}, err
	}
	return parseProcStat(pid, b)
}

func parseProcStat(pid int, b []byte) (procEntry, error) {
	// The command name may hold anything; the fields follow its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procEntry{}, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+2:])
	// state(3) ppid(4) ... starttime(22): indices from state at 0.
	if len(f) < 20 || len(f[0]) != 1 {
		return procEntry{}, errors.New("malformed stat")
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil {
		return procEntry{}, errors.New("malformed stat")
	}
	return procEntry{pid: pid, ppid: ppid, state: f[0][0], start: start}, nil
}

// descendants lists the live (not zombie) processes whose chain of
// parents leads to the process ancestor.
func descendants(ancestor int) []procEntry {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	procs := make(map[int]procEntry, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, err := readProcStat(pid); err == nil {
			procs[pid] = p
		}
	}
	memo := map[int]bool{ancestor: true}
	var under func(pid, depth int) bool
	under = func(pid, depth int) bool {
		if v, ok := memo[pid]; ok {
			return v
		}
		p, ok := procs[pid]
		if !ok || p.ppid <= 0 || p.ppid == pid || depth > 4096 {
			return false
		}
		v := under(p.ppid, depth+1)
		memo[pid] = v
		return v
	}
	var out []procEntry
	for pid, p := range procs {
		if pid != ancestor && p.state != 'Z' && under(pid, 0) {
			out = append(out, p)
		}
	}
	return out
}

// signalProc sends sig to p if the process with p's pid is still p (its
// start time matches): a pid freed and reused meanwhile is not touched.
func signalProc(p procEntry, sig syscall.Signal) {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			if now, err := readProcStat(p.pid); err == nil && now.start == p.start {
				unix.Kill(p.pid, sig)
			}
		}
		return
	}
	defer unix.Close(fd)
	// The fd pins the process: check it is the one listed, then signal it.
	if now, err := readProcStat(p.pid); err != nil || now.start != p.start {
		return
	}
	unix.PidfdSendSignal(fd, sig, nil, 0)
}

// killGiveUp is how long SIGKILL is repeated before the supervisor gives
// up on processes that do not die (stuck in the kernel).
const killGiveUp = 30 * time.Second

// killDescendants ends every process below this one: SIGTERM, up to grace
// for them to exit, then SIGKILL, until none is left (new ones started
// meanwhile included). It returns the pids of those that would not die.
func killDescendants(grace time.Duration) []int {
	self := os.Getpid()
	deadline := time.Now().Add(grace)
	giveUp := deadline.Add(killGiveUp)
	termed := map[[2]uint64]bool{}
	for {
		ds := descendants(self)
		if len(ds) == 0 {
			return nil
		}
		if time.Now().After(giveUp) {
			pids := make([]int, len(ds))
			for i, p := range ds {
				pids[i] = p.pid
			}
			return pids
		}
		kill := time.Now().After(deadline)
		for _, p := range ds {
			key := [2]uint64{uint64(p.pid), p.start}
			switch {
			case kill:
				signalProc(p, syscall.SIGKILL)
			case !termed[key]:
				termed[key] = true
				signalProc(p, syscall.SIGTERM)
				// A stopped process acts on SIGTERM only once continued.
				signalProc(p, syscall.SIGCONT)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeStatus writes dir/status.json atomically.
func writeStatus(dir string, st jobproto.Status) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "status.json"), data, 0o644)
}

// writeFileAtomic replaces path with data (a temporary file renamed over
// it; the directory is root's).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
