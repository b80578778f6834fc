package reconciler

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/sqlite"
)

// fakeRuntime is an in-memory chub.Runtime for this package's unit tests;
// the real runtimes are exercised by runtime/runtimetest and e2e.
type fakeRuntime struct {
	mu         sync.Mutex
	phase      map[string]chub.Phase
	failStart  error
	failCreate error
	calls      []string
}

func newFake() *fakeRuntime { return &fakeRuntime{phase: map[string]chub.Phase{}} }

func (f *fakeRuntime) record(s string) { f.calls = append(f.calls, s) }
func (f *fakeRuntime) Name() string    { return "fake" }
func (f *fakeRuntime) Create(_ context.Context, s chub.InstanceSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create")
	if f.failCreate != nil {
		return f.failCreate
	}
	if f.phase[s.ID] == "" || f.phase[s.ID] == chub.PhaseAbsent {
		f.phase[s.ID] = chub.PhaseStopped
	}
	return nil
}
func (f *fakeRuntime) Start(_ context.Context, s chub.InstanceSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("start")
	if f.failStart != nil {
		return f.failStart
	}
	f.phase[s.ID] = chub.PhaseRunning
	return nil
}
func (f *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("stop")
	if f.phase[id] == chub.PhaseRunning {
		f.phase[id] = chub.PhaseStopped
	}
	return nil
}
func (f *fakeRuntime) Destroy(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("destroy")
	delete(f.phase, id)
	return nil
}
func (f *fakeRuntime) Inspect(_ context.Context, id string) (chub.InstanceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.phase[id]
	if p == "" {
		p = chub.PhaseAbsent
	}
	return chub.InstanceStatus{Phase: p}, nil
}
func (f *fakeRuntime) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.phase {
		ids = append(ids, id)
	}
	return ids, nil
}
func (f *fakeRuntime) DialAgent(context.Context, string) (net.Conn, error) {
	return nil, errors.New("no agent in the fake runtime")
}

type fixture struct {
	store *sqlite.DB
	rt    *fakeRuntime
	rec   *Reconciler
	life  *lifecycle.Service
	user  *chub.User
	scope chub.WorkspaceScope
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
	if _, err := db.PutWorkspace(ctx, &chub.Workspace{ID: "w1", Scope: scope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rt := newFake()
	cat := chub.BuiltinCatalog()
	rec := New(Config{Store: db, Runtime: rt, Catalog: func() *chub.Catalog { return cat }})
	life := &lifecycle.Service{Store: db, Catalog: func() *chub.Catalog { return cat }, Region: "local"}
	return &fixture{store: db, rt: rt, rec: rec, life: life, user: u, scope: scope}
}

// converge reconciles one instance until it asks for no further pass.
func (f *fixture) converge(t *testing.T, id string) {
	t.Helper()
	for i := 0; i < 10; i++ {
		again, err := f.rec.Reconcile(context.Background(), id)
		if err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		if !again {
			return
		}
	}
	t.Fatal("reconcile did not settle in 10 passes")
}

func (f *fixture) create(t *testing.T, name string) *chub.Compute {
	t.Helper()
	c, _, _, err := f.life.CreateOrUpdate(context.Background(), f.user, f.scope, name, lifecycle.CreateRequest{Settings: chub.InstanceSettings{VMSize: "Standard_DS1_v2"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) get(t *testing.T, id string) *chub.Compute {
	t.Helper()
	c, err := f.store.GetComputeByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) op(t *testing.T, id string) *chub.Operation {
	t.Helper()
	op, err := f.store.GetOperation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func TestLifecycleConverges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "box")
	createOp := c.ActiveOperation
	f.converge(t, c.ID)
	if got := f.get(t, c.ID); got.State != chub.StateRunning || got.ActiveOperation != "" || got.LastOperation.OperationStatus != "Succeeded" {
		t.Fatalf("after create: state %s, active %q, last %+v", got.State, got.ActiveOperation, got.LastOperation)
	}
	if op := f.op(t, createOp); op.Status != chub.OpSucceeded || op.EndTime.IsZero() {
		t.Fatalf("create operation: %+v", op)
	}
	steps := []struct {
		op   chub.OperationName
		want chub.State
	}{{chub.OpStop, chub.StateStopped}, {chub.OpStart, chub.StateRunning}, {chub.OpRestart, chub.StateRunning}}
	for _, s := range steps {
		_, op, err := f.life.Act(ctx, f.user, f.scope, "box", s.op)
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		// One operation at a time.
		if _, _, err := f.life.Act(ctx, f.user, f.scope, "box", chub.OpStart); chub.ErrorKind(err) != chub.KindConflict {
			t.Fatalf("a second operation during %s: %v; want a conflict", s.op, err)
		}
		f.converge(t, c.ID)
		if got := f.get(t, c.ID); got.State != s.want {
			t.Fatalf("after %s: %s; want %s", s.op, got.State, s.want)
		}
		if got := f.op(t, op.ID); got.Status != chub.OpSucceeded {
			t.Fatalf("%s operation: %s", s.op, got.Status)
		}
	}
	f.rt.mu.Lock()
	calls := len(f.rt.calls)
	f.rt.mu.Unlock()
	// A converged instance needs no runtime action: passes are idempotent.
	f.converge(t, c.ID)
	f.converge(t, c.ID)
	f.rt.mu.Lock()
	defer f.rt.mu.Unlock()
	if len(f.rt.calls) != calls {
		t.Fatalf("extra passes acted on the runtime: %v", f.rt.calls[calls:])
	}
}

func TestFailuresAreRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.rt.failCreate = errors.New("disk full")
	c := f.create(t, "broken")
	f.converge(t, c.ID)
	got := f.get(t, c.ID)
	if got.State != chub.StateCreateFailed || got.LastOperation.OperationStatus != "CreateFailed" || len(got.Errors) != 1 || got.ActiveOperation != "" {
		t.Fatalf("after a failed create: state %s, last %+v, errors %v", got.State, got.LastOperation, got.Errors)
	}
	if op := f.op(t, c.ActiveOperation); op.Status != chub.OpFailed || op.Error == nil || op.Error.Message == "" {
		t.Fatalf("failed create operation: %+v", op)
	}
	// A failed instance is left alone until the user acts.
	f.converge(t, c.ID)
	if got := f.get(t, c.ID); got.State != chub.StateCreateFailed {
		t.Fatalf("a failed instance changed by itself: %s", got.State)
	}

	f.rt.failCreate = nil
	c2 := f.create(t, "flaky")
	f.converge(t, c2.ID)
	if _, _, err := f.life.Act(ctx, f.user, f.scope, "flaky", chub.OpStop); err != nil {
		t.Fatal(err)
	}
	f.converge(t, c2.ID)
	f.rt.failStart = errors.New("no cgroup")
	if _, _, err := f.life.Act(ctx, f.user, f.scope, "flaky", chub.OpStart); err != nil {
		t.Fatal(err)
	}
	f.converge(t, c2.ID)
	got = f.get(t, c2.ID)
	if got.State != chub.StateUnusable || got.LastOperation.OperationStatus != "StartFailed" || len(got.Errors) == 0 {
		t.Fatalf("after a failed start: state %s, last %+v, errors %v", got.State, got.LastOperation, got.Errors)
	}
	// Delete works from any state.
	f.rt.failStart = nil
	if _, err := f.life.Delete(ctx, f.user, f.scope, "broken"); err != nil {
		t.Fatal(err)
	}
	f.converge(t, c.ID)
	if _, err := f.store.GetComputeByID(ctx, c.ID); !chub.IsNotFound(err) {
		t.Fatalf("deleted instance still in the store: %v", err)
	}
}

func TestDeleteWinsAndOrphansGo(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "racer")
	createOp := c.ActiveOperation
	// Delete arrives before the create was ever reconciled.
	delOp, err := f.life.Delete(ctx, f.user, f.scope, "racer")
	if err != nil {
		t.Fatal(err)
	}
	if op := f.op(t, createOp); op.Status != chub.OpCanceled {
		t.Fatalf("the create in flight is %s; want Canceled", op.Status)
	}
	f.converge(t, c.ID)
	if op := f.op(t, delOp.ID); op.Status != chub.OpSucceeded {
		t.Fatalf("delete operation: %s", op.Status)
	}
	// Something the runtime holds that the store does not know is removed.
	f.rt.phase["orphan-id"] = chub.PhaseRunning
	f.converge(t, "orphan-id")
	if _, ok := f.rt.phase["orphan-id"]; ok {
		t.Fatal("the orphan was not destroyed")
	}
}

// TestStopWaitsForJobs: a stop of an instance running jobs leaves it
// Stopping, and running, until BusyJobs says none holds a slot; a wake
// comes back by itself.
func TestStopWaitsForJobs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var mu sync.Mutex
	busy := 2
	f.rec.cfg.BusyJobs = func(context.Context, string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return busy, nil
	}
	f.rec.cfg.JobWait = 10 * time.Millisecond
	var converged []chub.State
	f.rec.cfg.Converged = func(_ string, s chub.State) {
		mu.Lock()
		defer mu.Unlock()
		converged = append(converged, s)
	}
	c := f.create(t, "worker")
	f.converge(t, c.ID)
	mu.Lock()
	if len(converged) != 1 || converged[0] != chub.StateRunning {
		t.Errorf("Converged calls after the create: %v; want [Running]", converged)
	}
	mu.Unlock()
	if _, _, err := f.life.Act(ctx, f.user, f.scope, "worker", chub.OpStop); err != nil {
		t.Fatal(err)
	}
	f.converge(t, c.ID)
	if got := f.get(t, c.ID); got.State != chub.StateStopping || got.ActiveOperation == "" {
		t.Fatalf("stop with 2 busy jobs: state %s, active operation %q; want Stopping with the stop in flight", got.State, got.ActiveOperation)
	}
	if st, _ := f.rt.Inspect(ctx, c.ID); st.Phase != chub.PhaseRunning {
		t.Fatalf("stop with 2 busy jobs: runtime phase %s; want Running", st.Phase)
	}

	// The scheduled wakes finish the stop once the jobs are gone (the
	// resync is far away: only the stop's own wakes come back).
	f.rec.cfg.Resync = time.Hour
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.rec.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(30 * time.Millisecond) // a few passes that wait
	mu.Lock()
	busy = 0
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for f.get(t, c.ID).State != chub.StateStopped {
		if time.Now().After(deadline) {
			t.Fatalf("stop after the jobs ended: state %s; want Stopped", f.get(t, c.ID).State)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, _ := f.rt.Inspect(ctx, c.ID); st.Phase != chub.PhaseStopped {
		t.Fatalf("after the stop: runtime phase %s; want Stopped", st.Phase)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(converged) != 2 || converged[1] != chub.StateStopped {
		t.Errorf("Converged calls: %v; want [Running Stopped]", converged)
	}
}
