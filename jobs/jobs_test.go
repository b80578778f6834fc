package jobs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/artifacts"
	"github.com/computehub/chub/jobproto"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/sqlite"
)

// clock is a test's time, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	t     *testing.T
	store *sqlite.DB
	arts  *artifacts.Store
	rt    *fakeRuntime
	agent *fakeAgent
	clock *clock
	ctl   *Controller
	user  *chub.User
	scope chub.WorkspaceScope
	ws    *chub.Workspace
	woken []string // WakeInstance calls
	wmu   sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u := &chub.User{ID: "u1", TenantID: "t", Name: "alice", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	scope := chub.WorkspaceScope{Subscription: "s", ResourceGroup: "rg", Workspace: "ws"}
	ws := &chub.Workspace{ID: "w1", Scope: scope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}
	if _, err := db.PutWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: db, arts: &artifacts.Store{Dir: filepath.Join(t.TempDir(), "artifacts")}, rt: newFakeRuntime(),
		clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, user: u, scope: scope, ws: ws}
	f.agent = newFakeAgent(f.clock.now)
	f.ctl = f.newController()
	return f
}

// newController is a controller over the fixture's store, runtime and
// agent (a server restart makes another).
func (f *fixture) newController() *Controller {
	cat := chub.BuiltinCatalog()
	c := New(Config{Store: f.store, Runtime: f.rt, Artifacts: f.arts, Catalog: func() *chub.Catalog { return cat },
		Now: f.clock.now, WakeInstance: func(id string) { f.wmu.Lock(); f.woken = append(f.woken, id); f.wmu.Unlock() }})
	c.agent = f.agent
	return c
}

// instance makes a running instance of the size.
func (f *fixture) instance(name, size string, maxJobs int) *chub.Compute {
	f.t.Helper()
	ctx := context.Background()
	cat := chub.BuiltinCatalog()
	life := &lifecycle.Service{Store: f.store, Catalog: func() *chub.Catalog { return cat }, Region: "local"}
	c, _, _, err := life.CreateOrUpdate(ctx, f.user, f.scope, name, lifecycle.CreateRequest{Settings: chub.InstanceSettings{VMSize: size, MaxConcurrentJobs: maxJobs}})
	if err != nil {
		f.t.Fatal(err)
	}
	c.State, c.ActiveOperation = chub.StateRunning, ""
	if err := f.store.UpdateCompute(ctx, c); err != nil {
		f.t.Fatal(err)
	}
	f.rt.set(c.ID, chub.PhaseRunning)
	return c
}

func (f *fixture) submit(c *chub.Compute, name string, mod func(*chub.Job)) *chub.Job {
	f.t.Helper()
	j := &chub.Job{ID: lifecycle.NewID(), WorkspaceID: f.ws.ID, Scope: f.scope, Name: name, ComputeID: c.ID,
		Spec:   chub.JobSpec{JobType: "Command", Command: "echo " + name, ComputeID: c.ResourceID()},
		Status: chub.JobNotStarted, CreatedBy: f.user.Principal(), CreatedAt: f.clock.now(), ModifiedBy: f.user.Principal(), ModifiedAt: f.clock.now()}
	if mod != nil {
		mod(j)
	}
	if err := f.store.CreateJob(context.Background(), j); err != nil {
		f.t.Fatal(err)
	}
	return j
}

func (f *fixture) job(j *chub.Job) *chub.Job {
	f.t.Helper()
	got, err := f.store.GetJobByID(context.Background(), j.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

// pass runs passes over one instance until it asks for no other.
func (f *fixture) pass(c *chub.Compute) {
	f.t.Helper()
	for i := 0; i < 10; i++ {
		again, err := f.ctl.pass(context.Background(), c.ID)
		if err != nil {
			f.t.Fatalf("pass: %v", err)
		}
		if !again {
			return
		}
	}
	f.t.Fatal("the pass did not settle in 10 rounds")
}

func (f *fixture) statuses(js []*chub.Job) []chub.JobStatus {
	var out []chub.JobStatus
	for _, j := range js {
		out = append(out, f.job(j).Status)
	}
	return out
}

func (f *fixture) wantStatus(j *chub.Job, want chub.JobStatus) *chub.Job {
	f.t.Helper()
	got := f.job(j)
	if got.Status != want {
		f.t.Fatalf("job %s: status %s (%s); want %s", j.Name, got.Status, got.Message, want)
	}
	return got
}

func TestSlotsRunInSubmissionOrder(t *testing.T) {
	f := newFixture(t)
	c := f.instance("box", "Standard_DS3_v2", 0) // 4 vCPUs
	var js []*chub.Job
	for i := 1; i <= 8; i++ {
		js = append(js, f.submit(c, fmt.Sprintf("j%d", i), nil))
	}
	f.pass(c)
	want := []chub.JobStatus{chub.JobRunning, chub.JobRunning, chub.JobRunning, chub.JobRunning, chub.JobQueued, chub.JobQueued, chub.JobQueued, chub.JobQueued}
	if got := f.statuses(js); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the first pass: %v; want %v", got, want)
	}
	if got, want := f.job(js[5]).Message, "waiting for a slot: 4 of 4 running on box"; got != want {
		t.Errorf("queued job's message %q; want %q", got, want)
	}
	for _, j := range js[:4] {
		got := f.job(j)
		if got.StartTime == nil {
			t.Errorf("running job %s has no start time", j.Name)
		}
		if pid := f.rt.placed[j.ID]; pid <= 0 {
			t.Errorf("running job %s was not placed in its cgroup (pid %d)", j.Name, pid)
		}
		f.agent.mu.Lock()
		sp := f.agent.jobs[c.ID][j.ID].spec
		f.agent.mu.Unlock()
		if sp.Command != "echo "+j.Name || !strings.Contains(strings.Join(sp.Env, " "), "AZUREML_RUN_ID="+j.Name) {
			t.Errorf("job %s: agent spec %+v; want its command and AZUREML_RUN_ID", j.Name, sp)
		}
	}
	// Each end frees a slot for the next job in submission order.
	order := []int{1, 0, 3, 2, 4, 5, 6, 7}
	next := 4
	for _, i := range order {
		f.agent.exit(c.ID, js[i].ID, 0, "", false)
		f.pass(c)
		f.wantStatus(js[i], chub.JobCompleted)
		if next < len(js) {
			f.wantStatus(js[next], chub.JobRunning)
			next++
		}
		running, left := 0, 0
		for _, s := range f.statuses(js) {
			if s == chub.JobRunning {
				running++
			}
			if s != chub.JobCompleted {
				left++
			}
		}
		if want := min(4, left); running != want {
			t.Fatalf("after job %s ended: %d running; want %d", js[i].Name, running, want)
		}
	}
	for _, j := range js {
		got := f.wantStatus(j, chub.JobCompleted)
		if got.ExitCode == nil || *got.ExitCode != 0 || got.Error != nil || got.EndTime == nil || !got.Artifacts.Kept {
			t.Errorf("job %s: exit %v error %v end %v artifacts %+v; want exit 0, no error, an end time, kept", j.Name, got.ExitCode, got.Error, got.EndTime, got.Artifacts)
		}
		if f.agent.state(c.ID, j.ID) != "" {
			t.Errorf("job %s: the agent still has it after its end", j.Name)
		}
		if f.rt.killed[j.ID] == 0 {
			t.Errorf("job %s: its cgroup was not removed after its end", j.Name)
		}
	}
	if n, err := f.ctl.BusyJobs(context.Background(), c.ID); err != nil || n != 0 {
		t.Errorf("BusyJobs after all ended: %d, %v; want 0", n, err)
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name      string
		code      int
		errMsg    string
		timedOut  bool
		want      chub.JobStatus
		wantCode  string
		wantMsg   string
		wantExit  int // -1: none
		timeout   time.Duration
		stdoutLog string
	}{
		{name: "ok", code: 0, want: chub.JobCompleted, wantMsg: "the command exited with code 0", wantExit: 0, stdoutLog: "hello\n"},
		{name: "fails", code: 3, want: chub.JobFailed, wantCode: "JobFailed", wantMsg: "the command exited with code 3", wantExit: 3},
		{name: "never-started", code: -1, errMsg: "bash: no such file", want: chub.JobFailed, wantCode: "JobFailed", wantMsg: "the command did not start: bash: no such file", wantExit: -1},
		{name: "timed-out", code: 143, timedOut: true, timeout: 10 * time.Second, want: chub.JobFailed, wantCode: "JobTimeout",
			wantMsg: "the job ran longer than its limit of PT10S (limits.timeout) and was ended", wantExit: 143},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			c := f.instance("box", "Standard_DS1_v2", 0)
			j := f.submit(c, "j", func(j *chub.Job) { j.Spec.Timeout = tc.timeout })
			f.pass(c)
			f.wantStatus(j, chub.JobRunning)
			if tc.stdoutLog != "" {
				f.agent.write(c.ID, j.ID, jobproto.StreamStdout, tc.stdoutLog)
			}
			f.agent.exit(c.ID, j.ID, tc.code, tc.errMsg, tc.timedOut)
			f.pass(c)
			got := f.wantStatus(j, tc.want)
			if tc.wantCode == "" && got.Error != nil {
				t.Errorf("error %+v; want none", got.Error)
			}
			if tc.wantCode != "" && (got.Error == nil || got.Error.Code != tc.wantCode || got.Error.Message != tc.wantMsg) {
				t.Errorf("error %+v; want %s %q", got.Error, tc.wantCode, tc.wantMsg)
			}
			if got.Message != tc.wantMsg {
				t.Errorf("message %q; want %q", got.Message, tc.wantMsg)
			}
			switch {
			case tc.wantExit < 0 && got.ExitCode != nil:
				t.Errorf("exit code %d; want none", *got.ExitCode)
			case tc.wantExit >= 0 && (got.ExitCode == nil || *got.ExitCode != tc.wantExit):
				t.Errorf("exit code %v; want %d", got.ExitCode, tc.wantExit)
			}
			if got.Artifacts.StdoutBytes != int64(len(tc.stdoutLog)) || got.Artifacts.LogBytes != int64(len(tc.stdoutLog)) {
				t.Errorf("artifacts %+v; want %d bytes of stdout and std_log", got.Artifacts, len(tc.stdoutLog))
			}
			var out bytes.Buffer
			if err := f.ctl.StreamLogs(context.Background(), got, jobproto.StreamStdout, 0, false, &out); err != nil || out.String() != tc.stdoutLog {
				t.Errorf("kept stdout %q, %v; want %q", out.String(), err, tc.stdoutLog)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS1_v2", 0) // 1 slot
	run := f.submit(c, "run", nil)
	queued := f.submit(c, "queued", nil)
	f.pass(c)
	f.wantStatus(run, chub.JobRunning)
	f.wantStatus(queued, chub.JobQueued)

	// A queued job ends at once, the agent never hears of it.
	got, err := f.ctl.Cancel(ctx, f.job(queued), f.user.Principal(), "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != chub.JobCanceled || got.EndTime == nil || got.Message != "canceled by alice" {
		t.Fatalf("canceled queued job: %s %q end %v; want Canceled %q with an end time", got.Status, got.Message, got.EndTime, "canceled by alice")
	}
	if f.agent.state(c.ID, queued.ID) != "" {
		t.Fatal("the agent has the canceled queued job")
	}

	// A running job waits for its processes to be gone.
	f.agent.slowCancel = true
	got, err = f.ctl.Cancel(ctx, f.job(run), f.user.Principal(), "no longer needed")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != chub.JobCancelRequested {
		t.Fatalf("canceled running job: %s; want CancelRequested", got.Status)
	}
	f.pass(c)
	f.wantStatus(run, chub.JobCancelRequested)
	if f.agent.cancels[run.ID] == 0 {
		t.Fatal("the agent was not asked to cancel the running job")
	}
	// A cancel again is a no-op.
	if again, err := f.ctl.Cancel(ctx, f.job(run), f.user.Principal(), ""); err != nil || again.Status != chub.JobCancelRequested {
		t.Fatalf("second cancel: %v, %v; want CancelRequested", again.Status, err)
	}
	f.agent.write(c.ID, run.ID, jobproto.StreamStdout, "bye\n")
	f.agent.exit(c.ID, run.ID, 143, "", false)
	f.pass(c)
	got = f.wantStatus(run, chub.JobCanceled)
	if got.Message != "canceled by alice: no longer needed" || got.Error != nil || !got.Artifacts.Kept || got.Artifacts.StdoutBytes != 4 {
		t.Errorf("canceled running job: message %q error %v artifacts %+v; want the reason, no error, the logs kept", got.Message, got.Error, got.Artifacts)
	}
	if f.agent.state(c.ID, run.ID) != "" {
		t.Error("the agent still has the canceled job")
	}
	// A cancel of an ended job changes nothing.
	if again, err := f.ctl.Cancel(ctx, got, f.user.Principal(), ""); err != nil || again.Status != chub.JobCanceled || again.Version != got.Version {
		t.Errorf("cancel of a canceled job: %s v%d, %v; want it unchanged (v%d)", again.Status, again.Version, err, got.Version)
	}
}

func TestCancelAllAndSlowAgent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS2_v2", 0) // 2 slots
	js := []*chub.Job{f.submit(c, "a", nil), f.submit(c, "b", nil), f.submit(c, "c", nil)}
	f.pass(c)
	f.agent.slowCancel = true
	if err := f.ctl.CancelAll(ctx, c.ID, f.user.Principal(), "the instance was deleted"); err != nil {
		t.Fatal(err)
	}
	want := []chub.JobStatus{chub.JobCancelRequested, chub.JobCancelRequested, chub.JobCanceled}
	if got := f.statuses(js); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after CancelAll: %v; want %v", got, want)
	}
	if n, _ := f.ctl.BusyJobs(ctx, c.ID); n != 2 {
		t.Fatalf("BusyJobs while canceling: %d; want 2", n)
	}
	// An agent that does not end the processes: the cgroup is killed
	// after the grace.
	f.pass(c)
	if f.rt.killed[js[0].ID] != 0 {
		t.Fatal("the job's cgroup was killed before the cancel's grace")
	}
	f.clock.add(cancelGrace + time.Second)
	f.pass(c)
	if f.rt.killed[js[0].ID] == 0 {
		t.Fatal("the job's cgroup was not killed after the cancel's grace")
	}
	f.agent.exit(c.ID, js[0].ID, 137, "", false)
	f.agent.exit(c.ID, js[1].ID, 137, "", false)
	f.pass(c)
	for _, j := range js {
		got := f.wantStatus(j, chub.JobCanceled)
		if got.Message != "canceled by alice: the instance was deleted" {
			t.Errorf("job %s: message %q", j.Name, got.Message)
		}
	}
}

func TestServerTimeout(t *testing.T) {
	f := newFixture(t)
	c := f.instance("box", "Standard_DS1_v2", 0)
	j := f.submit(c, "slow", func(j *chub.Job) { j.Spec.Timeout = time.Minute })
	f.pass(c)
	f.wantStatus(j, chub.JobRunning)
	f.clock.add(time.Minute + timeoutGrace/2)
	f.pass(c)
	if f.agent.cancels[j.ID] != 0 {
		t.Fatal("the server ended the job within the grace after its limit")
	}
	// The agent did not end it: the server does.
	f.clock.add(timeoutGrace)
	f.pass(c)
	if f.agent.cancels[j.ID] == 0 || f.rt.killed[j.ID] == 0 {
		t.Fatalf("past its limit and the grace: agent cancels %d, cgroup kills %d; want both", f.agent.cancels[j.ID], f.rt.killed[j.ID])
	}
	f.pass(c)
	got := f.wantStatus(j, chub.JobFailed)
	if got.Error == nil || got.Error.Code != "JobTimeout" || !strings.Contains(got.Error.Message, "PT1M") {
		t.Fatalf("error %+v; want JobTimeout naming PT1M", got.Error)
	}
}

func TestInstanceStoppedOrGone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS1_v2", 0)
	run := f.submit(c, "run", nil)
	queued := f.submit(c, "queued", nil)
	f.pass(c)
	f.wantStatus(run, chub.JobRunning)

	// The instance stops (killed, or a restart): the running job fails,
	// the queued one waits for the next start.
	f.rt.set(c.ID, chub.PhaseStopped)
	f.pass(c)
	got := f.wantStatus(run, chub.JobFailed)
	if got.Error == nil || got.Error.Code != "InstanceStopped" || got.Error.Message != "instance box stopped while the job ran" {
		t.Errorf("error %+v; want InstanceStopped", got.Error)
	}
	if got := f.wantStatus(queued, chub.JobQueued); got.Message != "waiting for instance box to start" {
		t.Errorf("queued message %q", got.Message)
	}
	// It starts again: the queued job runs.
	f.rt.set(c.ID, chub.PhaseRunning)
	f.pass(c)
	f.wantStatus(queued, chub.JobRunning)
	// The agent restarted (the instance did) and forgot the job.
	f.agent.mu.Lock()
	f.agent.jobs[c.ID] = nil
	f.agent.mu.Unlock()
	f.pass(c)
	if got := f.wantStatus(queued, chub.JobFailed); got.Error == nil || got.Error.Code != "InstanceRestarted" {
		t.Errorf("error %+v; want InstanceRestarted", got.Error)
	}

	// Killed and started again before a pass saw it stopped: the new
	// agent reports the job ended without an exit code.
	again := f.submit(c, "again", nil)
	f.pass(c)
	f.wantStatus(again, chub.JobRunning)
	f.agent.write(c.ID, again.ID, jobproto.StreamStdout, "started\n")
	f.clock.add(time.Second)
	f.rt.mu.Lock()
	f.rt.started[c.ID] = f.clock.now()
	f.rt.mu.Unlock()
	f.agent.exit(c.ID, again.ID, -1, "the instance stopped before the job ended", false)
	f.pass(c)
	got = f.wantStatus(again, chub.JobFailed)
	if got.Error == nil || got.Error.Code != "InstanceRestarted" || got.Error.Message != "instance box restarted while the job ran" || got.Artifacts.StdoutBytes != 8 {
		t.Errorf("job under a restart: error %+v artifacts %+v; want InstanceRestarted and its log kept", got.Error, got.Artifacts)
	}

	// Deleted: what is left fails with the reason.
	late := f.submit(c, "late", nil)
	cur, err := f.store.GetComputeByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.RemoveCompute(ctx, cur); err != nil {
		t.Fatal(err)
	}
	f.pass(c)
	if got := f.wantStatus(late, chub.JobFailed); got.Error == nil || got.Error.Code != "InstanceDeleted" || got.Error.Message != "instance box was deleted" {
		t.Errorf("error %+v; want InstanceDeleted", got.Error)
	}
}

func TestStopWaitsThenWakesTheInstance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS1_v2", 0)
	run := f.submit(c, "run", nil)
	queued := f.submit(c, "queued", nil)
	f.pass(c)
	// A stop without cancelJobs: the running job goes on, the queued one
	// does not start.
	cur, _ := f.store.GetComputeByID(ctx, c.ID)
	cur.Desired, cur.State = chub.DesiredStopped, chub.StateStopping
	if err := f.store.UpdateCompute(ctx, cur); err != nil {
		t.Fatal(err)
	}
	f.agent.exit(c.ID, run.ID, 0, "", false)
	f.pass(c)
	f.wantStatus(run, chub.JobCompleted)
	if got := f.wantStatus(queued, chub.JobQueued); got.Message != "waiting for instance box to start" {
		t.Errorf("queued message %q", got.Message)
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if len(f.woken) != 1 || f.woken[0] != c.ID {
		t.Errorf("WakeInstance calls %v; want one for the instance", f.woken)
	}
}

func TestMaxConcurrentJobs(t *testing.T) {
	cases := []struct {
		size    string
		max     int
		running int
	}{
		{"Standard_DS3_v2", 0, 4},
		{"Standard_DS3_v2", 2, 2},
		{"Standard_DS3_v2", 1, 1},
		{"Standard_DS1_v2", 8, 1}, // never above the size's vCPUs (after a resize)
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d", tc.size, tc.max), func(t *testing.T) {
			f := newFixture(t)
			c := f.instance("box", tc.size, 0)
			if tc.max > 0 {
				cur, _ := f.store.GetComputeByID(context.Background(), c.ID)
				cur.Settings.MaxConcurrentJobs = tc.max
				if err := f.store.UpdateCompute(context.Background(), cur); err != nil {
					t.Fatal(err)
				}
			}
			var js []*chub.Job
			for i := 0; i < 6; i++ {
				js = append(js, f.submit(c, fmt.Sprintf("j%d", i), nil))
			}
			f.pass(c)
			running := 0
			for _, s := range f.statuses(js) {
				if s == chub.JobRunning {
					running++
				}
			}
			if running != tc.running {
				t.Fatalf("%d running; want %d", running, tc.running)
			}
		})
	}
}

func TestNotTheOwner(t *testing.T) {
	f := newFixture(t)
	c := f.instance("box", "Standard_DS1_v2", 0)
	j := f.submit(c, "intruder", func(j *chub.Job) { j.CreatedBy = chub.Principal{UserID: "u2", UserName: "bob"} })
	f.pass(c)
	got := f.wantStatus(j, chub.JobFailed)
	if got.Error == nil || got.Error.Code != "AuthorizationFailed" {
		t.Fatalf("error %+v; want AuthorizationFailed", got.Error)
	}
	if f.agent.state(c.ID, j.ID) != "" {
		t.Fatal("the agent got the job of another user")
	}
}

func TestPreparationFails(t *testing.T) {
	f := newFixture(t)
	c := f.instance("box", "Standard_DS1_v2", 0)
	f.agent.failPut = fmt.Errorf("disk full")
	j := f.submit(c, "j", nil)
	f.pass(c)
	got := f.wantStatus(j, chub.JobFailed)
	if got.Error == nil || got.Error.Code != "JobPreparationFailed" || !strings.Contains(got.Error.Message, "disk full") {
		t.Fatalf("error %+v; want JobPreparationFailed with the cause", got.Error)
	}
}

// TestServerRestart: a controller over the same store, the agent still
// running the jobs (the server restarted), goes on with them.
func TestServerRestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS2_v2", 0)
	a := f.submit(c, "a", nil)
	b := f.submit(c, "b", nil)
	f.pass(c)
	f.wantStatus(a, chub.JobRunning)
	f.wantStatus(b, chub.JobRunning)
	// b's preparation was cut short: the agent holds it, the store says Preparing.
	cur := f.job(b)
	cur.Status = chub.JobPreparing
	if err := f.store.UpdateJob(ctx, cur); err != nil {
		t.Fatal(err)
	}
	f.agent.mu.Lock()
	f.agent.jobs[c.ID][b.ID].st.State = jobproto.StateHeld
	f.agent.mu.Unlock()
	f.clock.add(time.Second)
	exitAt := f.clock.now()
	f.agent.exit(c.ID, a.ID, 0, "", false) // a ended while no server ran
	f.clock.add(time.Minute)
	// A job the store ended but the agent still has (the server stopped
	// before the clean-up).
	stray := f.submit(c, "stray", nil)
	f.agent.PutJob(ctx, c.ID, jobproto.Spec{ID: stray.ID})
	cur = f.job(stray)
	cur.Status = chub.JobCompleted
	if err := f.store.UpdateJob(ctx, cur); err != nil {
		t.Fatal(err)
	}

	f.ctl = f.newController()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.ctl.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return f.job(a).Status == chub.JobCompleted && f.job(b).Status == chub.JobRunning })
	if got := f.job(a).EndTime; got == nil || !got.Equal(exitAt) {
		t.Errorf("end time of the job that ended while no server ran: %v; want the agent's %v", got, exitAt)
	}
	if f.agent.state(c.ID, b.ID) != jobproto.StateRunning {
		t.Fatalf("the held job is %q in the agent; want running", f.agent.state(c.ID, b.ID))
	}
	waitFor(t, func() bool { return f.agent.state(c.ID, stray.ID) == "" })
	// And the watcher sees b end without a wake.
	f.agent.exit(c.ID, b.ID, 1, "", false)
	waitFor(t, func() bool { return f.job(b).Status == chub.JobFailed })
}

// waitFor waits (for at most 10 s) for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWakeAndFollow: with the controller running, a wake starts a job at
// once, and a log follower gets everything from the agent and then from
// the store, each byte once.
func TestWakeAndFollow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS1_v2", 0)
	f.ctl.cfg.Resync = time.Hour // only the wake and the watcher act
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.ctl.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	j := f.submit(c, "j", nil)
	var out bytes.Buffer
	followed := make(chan error, 1)
	go func() { followed <- f.ctl.StreamLogs(ctx, j, jobproto.StreamLog, 0, true, &syncWriter{w: &out}) }()
	f.ctl.Wake(c.ID)
	waitFor(t, func() bool { return f.job(j).Status == chub.JobRunning })
	f.agent.write(c.ID, j.ID, jobproto.StreamStdout, "one\n")
	f.agent.write(c.ID, j.ID, jobproto.StreamStderr, "two\n")
	f.agent.exit(c.ID, j.ID, 0, "", false)
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if got := f.job(j); got.Status != chub.JobCompleted {
		t.Fatalf("the follower ended with the job %s", got.Status)
	}
	if got, want := out.String(), "one\ntwo\n"; got != want {
		t.Fatalf("followed log %q; want %q", got, want)
	}
	cases := []struct {
		stream string
		offset int64
		want   string
	}{{"std_log", 0, "one\ntwo\n"}, {"std_log", 4, "two\n"}, {"stdout", 0, "one\n"}, {"stderr", 2, "o\n"}, {"stderr", 100, ""}}
	for _, tc := range cases {
		var b bytes.Buffer
		if err := f.ctl.StreamLogs(ctx, j, tc.stream, tc.offset, true, &b); err != nil || b.String() != tc.want {
			t.Errorf("kept %s from %d: %q, %v; want %q", tc.stream, tc.offset, b.String(), err, tc.want)
		}
	}
	for _, bad := range []struct {
		stream string
		offset int64
	}{{"stdin", 0}, {"stdout", -1}} {
		if err := f.ctl.StreamLogs(ctx, j, bad.stream, bad.offset, false, io.Discard); chub.ErrorKind(err) != chub.KindInvalid {
			t.Errorf("logs %s from %d: %v; want KindInvalid", bad.stream, bad.offset, err)
		}
	}
	// The outputs were kept.
	rc, err := f.arts.OpenOutputs(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		found = found || h.Name == "outputs/model.txt"
	}
	if !found {
		t.Error("the kept outputs lack outputs/model.txt")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestCodeIsCopied(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS1_v2", 0)
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "train.py", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("print"))
	tw.Close()
	zw.Close()
	blob := &chub.Blob{ID: lifecycle.NewID(), WorkspaceID: f.ws.ID, CreatedBy: f.user.Principal(), CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := f.store.CreateBlob(ctx, blob); err != nil {
		t.Fatal(err)
	}
	size, sum, err := f.arts.PutBlob(blob.ID, bytes.NewReader(tgz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.MarkBlobReady(ctx, blob.ID, size, sum); err != nil {
		t.Fatal(err)
	}
	code := &chub.AssetVersion{ID: lifecycle.NewID(), Kind: chub.AssetCode, WorkspaceID: f.ws.ID, Scope: f.scope, Name: "src", Version: "1",
		CodeURI: "https://chub.example/chub/v1/blobs/" + blob.ID, CreatedBy: f.user.Principal(), CreatedAt: time.Now(), ModifiedAt: time.Now()}
	if _, err := f.store.PutAsset(ctx, code); err != nil {
		t.Fatal(err)
	}
	j := f.submit(c, "j", func(j *chub.Job) {
		j.Spec.CodeID = code.ResourceID()
		j.Spec.Command = "python train.py --out ${{outputs.model}} --lr ${{inputs.lr}}"
		j.Spec.Inputs = map[string]chub.JobInput{"lr": {Type: "literal", Value: "0.1"}}
		j.Spec.Outputs = map[string]chub.JobOutput{"model": {Type: "uri_folder"}}
		j.Spec.EnvironmentVariables = map[string]string{"B": "2", "A": "1"}
	})
	missing := f.submit(c, "missing", func(j *chub.Job) { j.Spec.CodeID = f.scope.ResourceID() + "/codes/nope/versions/1" })
	f.pass(c)
	f.wantStatus(j, chub.JobRunning)
	f.agent.mu.Lock()
	fj := f.agent.jobs[c.ID][j.ID]
	f.agent.mu.Unlock()
	if !bytes.Equal(fj.code, tgz.Bytes()) {
		t.Errorf("the agent got %d bytes of code; want the blob's %d", len(fj.code), tgz.Len())
	}
	wantCmd := "python train.py --out " + jobproto.OutputsDir(j.ID) + "/model --lr 0.1"
	if fj.spec.Command != wantCmd || strings.Join(fj.spec.Outputs, ",") != "model" || fj.spec.Env[0] != "A=1" || fj.spec.Env[1] != "B=2" {
		t.Errorf("agent spec %+v; want command %q, output model, env A then B", fj.spec, wantCmd)
	}
	f.agent.exit(c.ID, j.ID, 0, "", false)
	f.pass(c)
	if got := f.wantStatus(missing, chub.JobFailed); got.Error == nil || !strings.Contains(got.Error.Message, "nope") {
		t.Errorf("job with a missing code: error %+v; want one naming the code", got.Error)
	}
}

func TestRefs(t *testing.T) {
	if n, v, err := codeRef("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/codes/src/versions/2"); err != nil || n != "src" || v != "2" {
		t.Errorf("codeRef: %q %q %v; want src 2", n, v, err)
	}
	if _, _, err := codeRef("/x/environments/e/versions/1"); err == nil {
		t.Error("codeRef accepted an environment id")
	}
	for uri, want := range map[string]string{
		"https://h:8443/chub/v1/blobs/abc":  "abc",
		"https://h/chub/v1/blobs/abc?sig=x": "abc",
		"https://h/chub/v1/blobs/":          "",
		"https://h/chub/v1/blobs/a/b":       "",
		"https://h/chub/v1/other/abc":       "",
	} {
		got, err := blobRef(uri)
		if (want == "") != (err != nil) || got != want {
			t.Errorf("blobRef(%q) = %q, %v; want %q", uri, got, err, want)
		}
	}
}

func FuzzRefs(f *testing.F) {
	f.Add("/subscriptions/s/workspaces/ws/codes/src/versions/2")
	f.Add("https://h/chub/v1/blobs/abc?sig=x")
	f.Fuzz(func(t *testing.T, s string) {
		if n, v, err := codeRef(s); err == nil && (strings.Contains(n, "/") || strings.Contains(v, "/")) {
			t.Fatalf("codeRef(%q) = %q %q: a name with a slash", s, n, v)
		}
		if id, err := blobRef(s); err == nil && (id == "" || strings.Contains(id, "/")) {
			t.Fatalf("blobRef(%q) = %q", s, id)
		}
	})
}

func TestCancelMessage(t *testing.T) {
	alice := chub.Principal{UserID: "u1", UserName: "alice"}
	cases := []struct {
		by     chub.Principal
		reason string
		want   string
	}{
		{alice, "", "canceled by alice"},
		{alice, "the instance was deleted", "canceled by alice: the instance was deleted"},
		{alice, "canceled by alice", "canceled by alice"},
		{chub.Principal{}, "", "canceled"},
	}
	for _, tc := range cases {
		if got := cancelMessage(tc.by, tc.reason); got != tc.want {
			t.Errorf("cancelMessage(%q, %q) = %q; want %q", tc.by.UserName, tc.reason, got, tc.want)
		}
	}
}

// TestAgentSilent: an agent that stops answering is waited for a while
// (the pass fails and is retried), then the jobs that ran are Failed.
func TestAgentSilent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.instance("box", "Standard_DS2_v2", 0)
	run := f.submit(c, "run", nil)
	f.pass(c)
	f.wantStatus(run, chub.JobRunning)
	queued := f.submit(c, "queued", nil)
	f.agent.mu.Lock()
	f.agent.failList = fmt.Errorf("connection refused")
	f.agent.mu.Unlock()
	if _, err := f.ctl.pass(ctx, c.ID); err == nil {
		t.Fatal("a pass over a silent agent succeeded; want an error (retried later)")
	}
	f.wantStatus(run, chub.JobRunning)
	f.clock.add(unhealthyFor + time.Second)
	f.pass(c)
	got := f.wantStatus(run, chub.JobFailed)
	if got.Error == nil || got.Error.Code != "InstanceUnusable" || !strings.Contains(got.Error.Message, "connection refused") {
		t.Errorf("error %+v; want InstanceUnusable with the cause", got.Error)
	}
	f.wantStatus(queued, chub.JobNotStarted) // waits for the agent to answer again
	f.agent.mu.Lock()
	f.agent.failList = nil
	f.agent.mu.Unlock()
	f.pass(c)
	f.wantStatus(queued, chub.JobRunning)
}

// TestAgentOlderThanJobs: an instance started before the server knew jobs
// has an agent without them: queued jobs wait for a restart, saying so.
func TestAgentOlderThanJobs(t *testing.T) {
	f := newFixture(t)
	c := f.instance("box", "Standard_DS1_v2", 0)
	f.agent.failList = chub.NotFound("", "GET /v1/jobs: 404")
	j := f.submit(c, "j", nil)
	f.pass(c)
	if got := f.wantStatus(j, chub.JobQueued); !strings.Contains(got.Message, "restart") {
		t.Errorf("message %q; want one asking for a restart", got.Message)
	}
	f.agent.failList = nil
	f.pass(c)
	f.wantStatus(j, chub.JobRunning)
}
