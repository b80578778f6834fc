package jobs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// fakeAgent is an in-memory agent for this package's unit tests: jobs go
// created -> held -> running when asked, and exit when the test says so.
// The real agent is exercised by agent's tests and e2e.
type fakeAgent struct {
	mu   sync.Mutex
	jobs map[string]map[string]*fakeJob // instance -> job id -> job
	pid  int
	// slowCancel makes a cancel only record that it was asked (the test
	// then ends the job); otherwise a cancel ends it at once.
	slowCancel bool
	cancels    map[string]int
	failPut    error
	failList   error // the agent does not answer (or, not found, knows no jobs)
	now        func() time.Time
	// exited is closed and replaced whenever a job exits.
	exited chan struct{}
}

type fakeJob struct {
	st   jobproto.Status
	spec jobproto.Spec
	code []byte
	logs map[string]string
}

func newFakeAgent(now func() time.Time) *fakeAgent {
	return &fakeAgent{jobs: map[string]map[string]*fakeJob{}, pid: 100, cancels: map[string]int{}, now: now, exited: make(chan struct{})}
}

func notFound(job string) error { return chub.NotFound("job", "job %s is not known", job) }

func (a *fakeAgent) get(id, job string) (*fakeJob, error) {
	j, ok := a.jobs[id][job]
	if !ok {
		return nil, notFound(job)
	}
	return j, nil
}

func (a *fakeAgent) PutJob(_ context.Context, id string, spec jobproto.Spec) (jobproto.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failPut != nil {
		return jobproto.Status{}, a.failPut
	}
	if j, ok := a.jobs[id][spec.ID]; ok {
		if !reflect.DeepEqual(j.spec, spec) {
			return jobproto.Status{}, errors.New("another spec for the same job")
		}
		return j.st, nil
	}
	if a.jobs[id] == nil {
		a.jobs[id] = map[string]*fakeJob{}
	}
	j := &fakeJob{st: jobproto.Status{ID: spec.ID, State: jobproto.StateCreated}, spec: spec, logs: map[string]string{}}
	a.jobs[id][spec.ID] = j
	return j.st, nil
}

func (a *fakeAgent) PutJobCode(_ context.Context, id, job string, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	j, err := a.get(id, job)
	if err != nil {
		return err
	}
	if j.st.State != jobproto.StateCreated {
		return errors.New("code only while created")
	}
	j.code = data
	return nil
}

func (a *fakeAgent) StartJob(_ context.Context, id, job string) (jobproto.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j, err := a.get(id, job)
	if err != nil {
		return jobproto.Status{}, err
	}
	if j.st.State == jobproto.StateCreated {
		a.pid++
		j.st.State, j.st.PID = jobproto.StateHeld, a.pid
	}
	return j.st, nil
}

func (a *fakeAgent) GoJob(_ context.Context, id, job string) (jobproto.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j, err := a.get(id, job)
	if err != nil {
		return jobproto.Status{}, err
	}
	if j.st.State == jobproto.StateHeld {
		j.st.State, j.st.StartedAt = jobproto.StateRunning, a.now()
	}
	return j.st, nil
}

func (a *fakeAgent) CancelJob(_ context.Context, id, job string) (jobproto.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j, err := a.get(id, job)
	if err != nil {
		return jobproto.Status{}, err
	}
	a.cancels[job]++
	if !a.slowCancel && j.st.State != jobproto.StateExited {
		a.exitLocked(j, 143, "", true, false)
	}
	return j.st, nil
}

func (a *fakeAgent) JobStatus(_ context.Context, id, job string) (jobproto.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j, err := a.get(id, job)
	if err != nil {
		return jobproto.Status{}, err
	}
	return j.st, nil
}

func (a *fakeAgent) ListJobs(_ context.Context, id string) ([]jobproto.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failList != nil {
		return nil, a.failList
	}
	var out []jobproto.Status
	for _, j := range a.jobs[id] {
		out = append(out, j.st)
	}
	return out, nil
}

// JobLogs gives the log from offset; with follow it first waits for the
// job to exit (the real agent sends as it comes).
func (a *fakeAgent) JobLogs(ctx context.Context, id, job, stream string, offset int64, follow bool) (io.ReadCloser, error) {
	for {
		a.mu.Lock()
		j, err := a.get(id, job)
		if err != nil {
			a.mu.Unlock()
			return nil, err
		}
		exited, ch := j.st.State == jobproto.StateExited, a.exited
		log := j.logs[stream]
		a.mu.Unlock()
		if !follow || exited {
			if offset > int64(len(log)) {
				offset = int64(len(log))
			}
			return io.NopCloser(strings.NewReader(log[offset:])), nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

func (a *fakeAgent) JobOutputs(_ context.Context, id, job string) (io.ReadCloser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.get(id, job); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "outputs/", Mode: 0o755, Typeflag: tar.TypeDir})
	body := "weights of " + job
	tw.WriteHeader(&tar.Header{Name: "outputs/model.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	return io.NopCloser(&buf), nil
}

func (a *fakeAgent) DeleteJob(_ context.Context, id, job string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.jobs[id], job)
	return nil
}

func (a *fakeAgent) exitLocked(j *fakeJob, code int, errMsg string, canceled, timedOut bool) {
	c := code
	j.st.State, j.st.ExitCode, j.st.Error, j.st.Canceled, j.st.TimedOut, j.st.EndedAt, j.st.PID = jobproto.StateExited, &c, errMsg, canceled, timedOut, a.now(), 0
	close(a.exited)
	a.exited = make(chan struct{})
}

// exit ends a job's command with code (-1: it never started, errMsg says why).
func (a *fakeAgent) exit(id, job string, code int, errMsg string, timedOut bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j := a.jobs[id][job]
	if j == nil {
		panic("exit of an unknown job " + job)
	}
	a.exitLocked(j, code, errMsg, false, timedOut)
	if code < 0 {
		j.st.ExitCode = nil
	}
}

// write appends to a job's logs (std_log gets both streams).
func (a *fakeAgent) write(id, job, stream, s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j := a.jobs[id][job]
	j.logs[stream] += s
	j.logs[jobproto.StreamLog] += s
	close(a.exited) // wakes followers too
	a.exited = make(chan struct{})
}

func (a *fakeAgent) state(id, job string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if j, ok := a.jobs[id][job]; ok {
		return j.st.State
	}
	return ""
}

// fakeRuntime is an in-memory chub.Runtime and chub.JobPlacer.
type fakeRuntime struct {
	mu      sync.Mutex
	phase   map[string]chub.Phase
	started map[string]time.Time
	placed  map[string]int // job -> pid
	killed  map[string]int // job -> kills
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{phase: map[string]chub.Phase{}, started: map[string]time.Time{}, placed: map[string]int{}, killed: map[string]int{}}
}

func (f *fakeRuntime) set(id string, p chub.Phase) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.phase[id] = p
}

func (f *fakeRuntime) Name() string                                      { return "fake" }
func (f *fakeRuntime) Create(context.Context, chub.InstanceSpec) error   { return nil }
func (f *fakeRuntime) Start(context.Context, chub.InstanceSpec) error    { return nil }
func (f *fakeRuntime) Stop(context.Context, string, time.Duration) error { return nil }
func (f *fakeRuntime) Destroy(context.Context, string) error             { return nil }
func (f *fakeRuntime) List(context.Context) ([]string, error)            { return nil, nil }
func (f *fakeRuntime) DialAgent(context.Context, string) (net.Conn, error) {
	return nil, errors.New("no agent")
}
func (f *fakeRuntime) Inspect(_ context.Context, id string) (chub.InstanceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.phase[id]
	if p == "" {
		p = chub.PhaseAbsent
	}
	return chub.InstanceStatus{Phase: p, StartedAt: f.started[id]}, nil
}
func (f *fakeRuntime) PlaceJob(_ context.Context, id, job string, pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.placed[job] = pid
	return nil
}
func (f *fakeRuntime) KillJob(_ context.Context, id, job string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killed[job]++
	return nil
}
func (f *fakeRuntime) JobMemory(context.Context, string, string) (int64, error) { return 0, nil }
