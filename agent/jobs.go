package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/computehub/chub/jobproto"
	"github.com/computehub/chub/streamproto"
)

// The bounds of the job runner.
const (
	maxSpecBytes   = 1 << 20
	maxStatusBytes = 64 << 10
	// logPoll is how often a followed log is looked at for more.
	logPoll = 50 * time.Millisecond
	// maxOutputDepth bounds the directories nested in a job's outputs.
	maxOutputDepth = 128
)

// jobActivityEvery is how often a running job counts as activity (a
// variable for tests).
var jobActivityEvery = 10 * time.Second

// jobTable is the agent's jobs, by id.
type jobTable struct {
	mu   sync.Mutex
	jobs map[string]*agentJob // guarded by mu
}

// agentJob is one job of the table; its fields after spec are guarded by
// the table's mu.
type agentJob struct {
	id   string
	dir  string
	spec jobproto.Spec
	acct account

	state      string
	pid        int
	goW        *os.File // the supervisor's go pipe while held
	startedAt  time.Time
	canceled   bool
	busy       string // "code" while the code is extracted
	final      jobproto.Status
	ended      chan struct{} // closed once exited
	endedClose sync.Once
}

func (j *agentJob) markEnded() { j.endedClose.Do(func() { close(j.ended) }) }

func (a *Agent) jobsRoot() string {
	if a.cfg.JobsRoot != "" {
		return a.cfg.JobsRoot
	}
	return jobproto.Root
}

func (a *Agent) supervisorPath() string {
	if a.cfg.SupervisorPath != "" {
		return a.cfg.SupervisorPath
	}
	return "/proc/self/exe"
}

func (a *Agent) jobGrace() time.Duration {
	if a.cfg.JobKillGrace > 0 {
		return a.cfg.JobKillGrace
	}
	return 5 * time.Second
}

func jobHTTPError(w http.ResponseWriter, code int, format string, args ...any) {
	http.Error(w, truncate(fmt.Sprintf(format, args...), 4000), code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// registerJobs adds the job routes of package jobproto to mux.
func (a *Agent) registerJobs(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/jobs", a.serveJobList)
	mux.HandleFunc("PUT /v1/jobs/{id}", a.serveJobPut)
	mux.HandleFunc("GET /v1/jobs/{id}", a.serveJobGet)
	mux.HandleFunc("DELETE /v1/jobs/{id}", a.serveJobDelete)
	mux.HandleFunc("PUT /v1/jobs/{id}/code", a.serveJobCode)
	mux.HandleFunc("POST /v1/jobs/{id}/start", a.serveJobStart)
	mux.HandleFunc("POST /v1/jobs/{id}/go", a.serveJobGo)
	mux.HandleFunc("POST /v1/jobs/{id}/cancel", a.serveJobCancel)
	mux.HandleFunc("GET /v1/jobs/{id}/logs", a.serveJobLogs)
	mux.HandleFunc("GET /v1/jobs/{id}/outputs", a.serveJobOutputs)
}

// status is j's status now; the table's mu is held.
func (j *agentJob) status() jobproto.Status {
	var st jobproto.Status
	if j.state == jobproto.StateExited {
		st = j.final
		st.PID = 0
	} else {
		st = jobproto.Status{PID: j.pid, Canceled: j.canceled, StartedAt: j.startedAt}
	}
	st.ID, st.State = j.id, j.state
	size := func(stream string) int64 {
		fi, err := os.Lstat(filepath.Join(j.dir, "logs", stream+".txt"))
		if err != nil || !fi.Mode().IsRegular() {
			return 0
		}
		return fi.Size()
	}
	st.StdoutBytes, st.StderrBytes, st.LogBytes = size(jobproto.StreamStdout), size(jobproto.StreamStderr), size(jobproto.StreamLog)
	return st
}

// job finds the job of the request's id, answering 404 when unknown.
func (a *Agent) job(w http.ResponseWriter, r *http.Request) *agentJob {
	id := r.PathValue("id")
	if !jobproto.IDPattern.MatchString(id) {
		jobHTTPError(w, http.StatusBadRequest, "job id %.70q does not match %s", id, jobproto.IDPattern)
		return nil
	}
	a.jobs.mu.Lock()
	j := a.jobs.jobs[id]
	a.jobs.mu.Unlock()
	if j == nil {
		jobHTTPError(w, http.StatusNotFound, "no job %s in this instance", id)
	}
	return j
}

func (a *Agent) serveJobList(w http.ResponseWriter, r *http.Request) {
	a.jobs.mu.Lock()
	list := jobproto.List{Jobs: make([]jobproto.Status, 0, len(a.jobs.jobs))}
	for _, j := range a.jobs.jobs {
		list.Jobs = append(list.Jobs, j.status())
	}
	a.jobs.mu.Unlock()
	sort.Slice(list.Jobs, func(i, k int) bool { return list.Jobs[i].ID < list.Jobs[k].ID })
	writeJSON(w, list)
}

func (a *Agent) serveJobGet(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	a.jobs.mu.Lock()
	st := j.status()
	a.jobs.mu.Unlock()
	writeJSON(w, st)
}

// checkSpec reports what is wrong with a job's spec.
func checkSpec(s jobproto.Spec) error {
	if strings.TrimSpace(s.Command) == "" {
		return errors.New("the command is empty")
	}
	if strings.ContainsRune(s.Command, 0) {
		return errors.New("the command holds a NUL byte")
	}
	for _, kv := range s.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("environment entry %.70q is not KEY=VALUE (non-empty KEY, no NUL)", kv)
		}
	}
	seen := map[string]bool{}
	for _, o := range s.Outputs {
		if !jobproto.NamePattern.MatchString(o) {
			return fmt.Errorf("output name %.70q does not match %s", o, jobproto.NamePattern)
		}
		if seen[o] {
			return fmt.Errorf("output %s named twice", o)
		}
		seen[o] = true
	}
	if s.Timeout < 0 {
		return fmt.Errorf("the time-out %v is negative", s.Timeout)
	}
	return nil
}

func (a *Agent) serveJobPut(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !jobproto.IDPattern.MatchString(id) {
		jobHTTPError(w, http.StatusBadRequest, "job id %.70q does not match %s", id, jobproto.IDPattern)
		return
	}
	var spec jobproto.Spec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSpecBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		jobHTTPError(w, http.StatusBadRequest, "the job's spec (JSON of at most %d bytes): %v", maxSpecBytes, err)
		return
	}
	if spec.ID == "" {
		spec.ID = id
	}
	if spec.ID != id {
		jobHTTPError(w, http.StatusBadRequest, "the spec is of job %.70q, the path of %s", spec.ID, id)
		return
	}
	if err := checkSpec(spec); err != nil {
		jobHTTPError(w, http.StatusBadRequest, "job %s: %v", id, err)
		return
	}
	name := spec.User
	if name == "" {
		name = a.cfg.User
	}
	acct, err := lookupAccount(a.etc("passwd"), a.etc("group"), name)
	if err != nil {
		jobHTTPError(w, http.StatusBadRequest, "job %s: %v", id, err)
		return
	}

	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	if j := a.jobs.jobs[id]; j != nil {
		if !reflect.DeepEqual(j.spec, spec) {
			jobHTTPError(w, http.StatusConflict, "job %s exists with another spec; delete it first", id)
			return
		}
		writeJSON(w, j.status())
		return
	}
	if len(a.jobs.jobs) >= jobproto.MaxJobs {
		jobHTTPError(w, http.StatusConflict, "this instance has %d jobs, the most it keeps; delete some", len(a.jobs.jobs))
		return
	}
	dir := filepath.Join(a.jobsRoot(), id)
	if err := makeJobDirs(dir, spec, acct); err != nil {
		jobHTTPError(w, http.StatusInternalServerError, "job %s: %v", id, err)
		return
	}
	if a.jobs.jobs == nil {
		a.jobs.jobs = map[string]*agentJob{}
	}
	j := &agentJob{id: id, dir: dir, spec: spec, acct: acct, state: jobproto.StateCreated, ended: make(chan struct{})}
	a.jobs.jobs[id] = j
	writeJSON(w, j.status())
}

// makeJobDirs makes dir afresh: wd/ and wd/outputs/<name> for the user,
// logs/ and spec.json for root.
func makeJobDirs(dir string, spec jobproto.Spec, acct account) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("the jobs directory: %w", err)
	}
	// A directory the table does not know is a leftover: start afresh.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the leftover %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		return err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		return err
	}
	os.Chmod(logs, 0o755)
	for _, s := range jobproto.Streams {
		f, err := os.OpenFile(filepath.Join(logs, s+".txt"), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			return err
		}
		f.Chmod(0o644)
		f.Close()
	}
	userDirs := []string{filepath.Join(dir, "wd"), filepath.Join(dir, "wd", "outputs")}
	for _, o := range spec.Outputs {
		userDirs = append(userDirs, filepath.Join(dir, "wd", "outputs", o))
	}
	for _, d := range userDirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	// Given to the user deepest first: while a directory is chowned its
	// parent is still root's, so the user cannot swap it for a link.
	for i := len(userDirs) - 1; i >= 0; i-- {
		if err := os.Lchown(userDirs[i], int(acct.UID), int(acct.GID)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "spec.json"), data, 0o600)
}

func (a *Agent) serveJobCode(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	a.jobs.mu.Lock()
	if j.state != jobproto.StateCreated || j.busy != "" {
		st, busy := j.state, j.busy
		a.jobs.mu.Unlock()
		jobHTTPError(w, http.StatusConflict, "job %s is %s%s: code is put only before it starts", j.id, st, map[bool]string{true: " (" + busy + ")"}[busy != ""])
		return
	}
	j.busy = "code"
	a.jobs.mu.Unlock()
	err := extractCode(filepath.Join(j.dir, "wd"), r.Body, int(j.acct.UID), int(j.acct.GID))
	a.jobs.mu.Lock()
	j.busy = ""
	st := j.status()
	a.jobs.mu.Unlock()
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, errCodeTooLarge):
			code = http.StatusRequestEntityTooLarge
		case errors.Is(err, errBadArchive):
			code = http.StatusBadRequest
		}
		jobHTTPError(w, code, "job %s: the code: %v", j.id, err)
		return
	}
	writeJSON(w, st)
}

func (a *Agent) serveJobStart(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	if j.state != jobproto.StateCreated {
		writeJSON(w, j.status())
		return
	}
	if j.busy != "" {
		jobHTTPError(w, http.StatusConflict, "job %s: its %s is being put; start it after", j.id, j.busy)
		return
	}
	if err := a.startSupervisor(j); err != nil {
		jobHTTPError(w, http.StatusInternalServerError, "job %s: starting its supervisor: %v", j.id, err)
		return
	}
	a.touch("job")
	writeJSON(w, j.status())
}

// startSupervisor starts j's supervisor, held; the table's mu is held.
func (a *Agent) startSupervisor(j *agentJob) error {
	req := superviseRequest{
		Dir: j.dir, Spec: j.spec, UID: j.acct.UID, GID: j.acct.GID, Groups: j.acct.Groups,
		Env:   commandEnv(j.acct, streamproto.ExecRequest{Env: j.spec.Env}),
		Grace: a.jobGrace(),
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	reqR, reqW, err1 := os.Pipe()
	goR, goW, err2 := os.Pipe()
	devnull, err3 := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err := errors.Join(err1, err2, err3); err != nil {
		for _, f := range []*os.File{reqR, reqW, goR, goW, devnull} {
			if f != nil {
				f.Close()
			}
		}
		return err
	}
	path := a.supervisorPath()
	var pid int
	exited, err := a.reaper.start(func() (int, error) {
		p, err := os.StartProcess(path, []string{path, "agent", "job-supervise", j.id}, &os.ProcAttr{
			Dir:   "/",
			Env:   []string{"PATH=" + defaultPath, "LANG=C.UTF-8"},
			Files: []*os.File{reqR, devnull, os.Stderr, goR},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		})
		if err != nil {
			return 0, err
		}
		pid = p.Pid
		p.Release()
		return pid, nil
	})
	reqR.Close()
	goR.Close()
	devnull.Close()
	if err != nil {
		reqW.Close()
		goW.Close()
		return err
	}
	go func() {
		reqW.Write(data)
		reqW.Close()
	}()
	j.state, j.pid, j.goW = jobproto.StateHeld, pid, goW
	a.log.Info("job held", "job", j.id, "pid", pid, "user", j.acct.Name)
	go func() {
		ws := <-exited
		a.jobEnded(j, ws)
	}()
	return nil
}

// jobEnded records the end of j's supervisor: the status it wrote, or
// what its exit says when it wrote none.
func (a *Agent) jobEnded(j *agentJob, ws syscall.WaitStatus) {
	st, err := readStatusFile(j.dir, j.id)
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	if j.goW != nil {
		j.goW.Close()
		j.goW = nil
	}
	if err != nil {
		st = jobproto.Status{
			ID: j.id, State: jobproto.StateExited, Canceled: j.canceled, StartedAt: j.startedAt, EndedAt: time.Now().UTC(),
			Error: fmt.Sprintf("the job's supervisor ended (code %d) without its status: %v", exitCode(ws), err),
		}
		if err := writeStatus(j.dir, st); err != nil {
			a.log.Warn("job status", "job", j.id, "err", err)
		}
	}
	j.final, j.state, j.pid = st, jobproto.StateExited, 0
	j.markEnded()
	a.log.Info("job exited", "job", j.id, "exitCode", st.ExitCode, "canceled", st.Canceled, "timedOut", st.TimedOut)
}

func (a *Agent) serveJobGo(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	switch j.state {
	case jobproto.StateCreated:
		jobHTTPError(w, http.StatusConflict, "job %s is not started: start it first", j.id)
		return
	case jobproto.StateHeld:
		if j.canceled {
			jobHTTPError(w, http.StatusConflict, "job %s is canceled", j.id)
			return
		}
		_, err := j.goW.Write([]byte{'g'})
		j.goW.Close()
		j.goW = nil
		if err != nil {
			jobHTTPError(w, http.StatusInternalServerError, "job %s: its supervisor: %v", j.id, err)
			return
		}
		j.state, j.startedAt = jobproto.StateRunning, time.Now().UTC()
		a.touch("job")
	}
	writeJSON(w, j.status())
}

// cancelJob ends j (the table's mu is held): a job not started ends at
// once, a started one is told to end its tree.
func (a *Agent) cancelJob(j *agentJob) {
	switch j.state {
	case jobproto.StateCreated:
		now := time.Now().UTC()
		j.final = jobproto.Status{ID: j.id, State: jobproto.StateExited, Canceled: true, EndedAt: now,
			Error: "the job was canceled before its command started"}
		j.state, j.canceled = jobproto.StateExited, true
		if err := writeStatus(j.dir, j.final); err != nil {
			a.log.Warn("job status", "job", j.id, "err", err)
		}
		j.markEnded()
	case jobproto.StateHeld, jobproto.StateRunning:
		j.canceled = true
		if j.goW != nil {
			// Held: its go pipe closed without a go, the supervisor ends
			// without running the command (a signal could come before it
			// handles signals).
			j.goW.Close()
			j.goW = nil
			return
		}
		// The supervisor is our child, not reaped while its state is
		// not exited: the pid is still its own.
		syscall.Kill(j.pid, syscall.SIGTERM)
	}
}

func (a *Agent) serveJobCancel(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	a.cancelJob(j)
	writeJSON(w, j.status())
}

func (a *Agent) serveJobDelete(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	a.jobs.mu.Lock()
	if j.busy != "" {
		a.jobs.mu.Unlock()
		jobHTTPError(w, http.StatusConflict, "job %s: its %s is being put; delete it after", j.id, j.busy)
		return
	}
	a.cancelJob(j)
	a.jobs.mu.Unlock()
	wait := a.jobGrace() + 15*time.Second
	select {
	case <-j.ended:
	case <-time.After(wait):
		jobHTTPError(w, http.StatusInternalServerError, "job %s: its processes did not end within %v", j.id, wait)
		return
	case <-r.Context().Done():
		return
	}
	a.jobs.mu.Lock()
	if a.jobs.jobs[j.id] == j {
		delete(a.jobs.jobs, j.id)
	}
	a.jobs.mu.Unlock()
	// RemoveAll follows no link inside the tree.
	if err := os.RemoveAll(j.dir); err != nil {
		jobHTTPError(w, http.StatusInternalServerError, "job %s: removing its directory: %v", j.id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) serveJobLogs(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	q := r.URL.Query()
	stream := q.Get("stream")
	ok := false
	for _, s := range jobproto.Streams {
		ok = ok || s == stream
	}
	if !ok {
		jobHTTPError(w, http.StatusBadRequest, "stream %.40q is none of std_log, stdout, stderr", stream)
		return
	}
	var offset int64
	if v := q.Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			jobHTTPError(w, http.StatusBadRequest, "offset %.40q is not a number >= 0", v)
			return
		}
		offset = n
	}
	follow := false
	switch v := q.Get("follow"); v {
	case "", "0", "false":
	case "1", "true":
		follow = true
	default:
		jobHTTPError(w, http.StatusBadRequest, "follow %.40q is none of 1, true, 0, false", v)
		return
	}
	a.jobs.mu.Lock()
	state := j.state
	a.jobs.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Chub-Job-State", state)
	f, err := os.OpenFile(filepath.Join(j.dir, "logs", stream+".txt"), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			w.WriteHeader(http.StatusOK)
			return
		}
		jobHTTPError(w, http.StatusInternalServerError, "job %s: log %s: %v", j.id, stream, err)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		jobHTTPError(w, http.StatusInternalServerError, "job %s: log %s is not a regular file", j.id, stream)
		return
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		jobHTTPError(w, http.StatusBadRequest, "offset %d: %v", offset, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		// The header goes now: a quiet job's log may have nothing for long.
		flusher.Flush()
	}
	buf := make([]byte, 64<<10)
	last := false // the job has exited: read to the end once more
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			continue
		}
		if err != nil && err != io.EOF {
			return
		}
		if !follow || last {
			return
		}
		select {
		case <-j.ended:
			last = true
		case <-r.Context().Done():
			return
		case <-time.After(logPoll):
		}
	}
}

func (a *Agent) serveJobOutputs(w http.ResponseWriter, r *http.Request) {
	j := a.job(w, r)
	if j == nil {
		return
	}
	dir := filepath.Join(j.dir, "wd", "outputs")
	fd, err := openDirNoFollow(dir)
	if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.ENOTDIR) {
		jobHTTPError(w, http.StatusInternalServerError, "job %s: its outputs folder: %v", j.id, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err != nil {
		// The job's user removed the folder or put a link in its place:
		// it kept nothing.
		fd = -1
	}
	if err := writeOutputs(w, fd); err != nil {
		a.log.Warn("job outputs", "job", j.id, "err", err)
		// The answer is cut short: the client sees a broken stream, not a
		// tar that looks whole.
		panic(http.ErrAbortHandler)
	}
}

// readStatusFile reads dir/status.json (root's, never through a link,
// bounded) and checks it is an exited status of job id.
func readStatusFile(dir, id string) (jobproto.Status, error) {
	var st jobproto.Status
	data, err := readRootFile(filepath.Join(dir, "status.json"), maxStatusBytes)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("status.json: %w", err)
	}
	if st.ID != id || st.State != jobproto.StateExited || len(st.Error) > jobproto.MaxError ||
		(st.ExitCode != nil && (*st.ExitCode < 0 || *st.ExitCode > 255)) {
		return jobproto.Status{}, errors.New("status.json: not the exited status of this job")
	}
	st.PID = 0
	return st, nil
}

// readRootFile reads a regular file owned by root, not through a link, of
// at most max bytes.
func readRootFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok || sys.Uid != 0 {
		return nil, fmt.Errorf("%s: not a regular file of root's", path)
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes; at most %d", path, fi.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", path, max)
	}
	return data, nil
}

// loadJobs rebuilds the table from the jobs directory: a job with its
// status is reported as it ended; one with a spec but no status ended
// when the instance stopped. Anything else is ignored.
func (a *Agent) loadJobs() {
	root := a.jobsRoot()
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	if a.jobs.jobs == nil {
		a.jobs.jobs = map[string]*agentJob{}
	}
	for _, e := range ents {
		id := e.Name()
		if !jobproto.IDPattern.MatchString(id) || e.Type() != os.ModeDir || a.jobs.jobs[id] != nil || len(a.jobs.jobs) >= jobproto.MaxJobs {
			continue
		}
		dir := filepath.Join(root, id)
		var spec jobproto.Spec
		data, specErr := readRootFile(filepath.Join(dir, "spec.json"), maxSpecBytes)
		if specErr == nil {
			if json.Unmarshal(data, &spec) != nil || spec.ID != id {
				specErr = errors.New("malformed")
			}
		}
		st, err := readStatusFile(dir, id)
		if err != nil {
			if specErr != nil || !errors.Is(err, os.ErrNotExist) {
				continue
			}
			st = jobproto.Status{ID: id, State: jobproto.StateExited, EndedAt: time.Now().UTC(),
				Error: "the instance stopped before the job ended"}
			if err := writeStatus(dir, st); err != nil {
				a.log.Warn("job status", "job", id, "err", err)
			}
		}
		j := &agentJob{id: id, dir: dir, spec: spec, state: jobproto.StateExited, final: st, ended: make(chan struct{})}
		j.markEnded()
		a.jobs.jobs[id] = j
	}
	if n := len(a.jobs.jobs); n > 0 {
		a.log.Info("jobs found", "count", n)
	}
}

// jobsActive reports whether a job is held or running.
func (a *Agent) jobsActive() bool {
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	for _, j := range a.jobs.jobs {
		if j.state == jobproto.StateHeld || j.state == jobproto.StateRunning {
			return true
		}
	}
	return false
}

// jobActivity records activity "job" while a job runs, until stop closes.
func (a *Agent) jobActivity(stop <-chan struct{}) {
	t := time.NewTicker(jobActivityEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if a.jobsActive() {
				a.touch("job")
			}
		}
	}
}

// stopJobs tells every job's supervisor to end its tree (stopAll then
// waits for them with every other process). The stopping mark in the
// job's directory makes its status say the instance stopped, not that
// the job was canceled.
func (a *Agent) stopJobs() {
	a.jobs.mu.Lock()
	defer a.jobs.mu.Unlock()
	for _, j := range a.jobs.jobs {
		if (j.state == jobproto.StateHeld || j.state == jobproto.StateRunning) && !j.canceled {
			if err := writeFileAtomic(filepath.Join(j.dir, stoppingMark), nil, 0o644); err != nil {
				a.log.Warn("job stopping mark", "job", j.id, "err", err)
			}
			a.cancelJob(j)
			j.canceled = false
		}
	}
}
