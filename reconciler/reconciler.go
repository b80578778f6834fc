// Package reconciler drives every compute instance from what the runtime
// reports to what the store says it should be. It is level-triggered: each
// pass rebuilds its view from the store and the runtime, so a pass may be
// repeated, interrupted or run after a crash and still converge.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/workqueue"
)

// Config configures a Reconciler.
type Config struct {
	Store   chub.Store
	Runtime chub.Runtime
	Catalog func() *chub.Catalog
	Logger  *slog.Logger
	// Workers is how many instances are reconciled at once (default 8).
	Workers int
	// Resync is how often every instance is looked at even without a wake (default 30s).
	Resync time.Duration
	// StopGrace is how long processes get to exit on stop (default 10s).
	StopGrace time.Duration
	// StepTimeout bounds one runtime call (default 2m).
	StepTimeout time.Duration
	Now         func() time.Time
	// Observe, when set, asks a running instance what the server should
	// record of it (applications, activity); errors are logged, not fatal.
	Observe func(ctx context.Context, id string) (chub.Observed, error)
	// BusyJobs, when set, counts the jobs of an instance that hold a slot
	// (Preparing, Running, Finalizing, CancelRequested): a stop waits for
	// them to end, the instance staying Stopping, and looks again every
	// JobWait. Nil means instances run no jobs.
	BusyJobs func(ctx context.Context, computeID string) (int, error)
	// JobWait is how often a stop waiting for jobs looks again (default 1s).
	JobWait time.Duration
	// Converged, when set, is told each time an instance reaches a state
	// (written to the store): the job queues start what waited for it.
	Converged func(computeID string, state chub.State)
}

// Reconciler converges instances.
type Reconciler struct {
	cfg Config
	q   *workqueue.Queue
	log *slog.Logger

	mu      sync.Mutex // guards retries
	retries map[string]int
}

// New returns a reconciler; call Run to start it.
func New(cfg Config) *Reconciler {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.JobWait <= 0 {
		cfg.JobWait = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Reconciler{cfg: cfg, q: workqueue.New(), log: cfg.Logger, retries: map[string]int{}}
}

// Wake asks for the instance to be reconciled soon.
func (r *Reconciler) Wake(id string) { r.q.Add(id) }

// Run reconciles until ctx ends: first every instance and every orphan the
// runtime holds, then whatever is woken, and everything again each Resync.
func (r *Reconciler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id, ok := r.q.Get()
				if !ok {
					return
				}
				r.handle(ctx, id)
				r.q.Done(id)
			}
		}()
	}
	r.resyncAll(ctx)
	t := time.NewTicker(r.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.q.Close()
			wg.Wait()
			return
		case <-t.C:
			r.resyncAll(ctx)
		}
	}
}

// resyncAll queues every instance in the store and every instance the
// runtime holds, so that orphans are found and removed.
func (r *Reconciler) resyncAll(ctx context.Context) {
	cs, err := r.cfg.Store.ListAllComputes(ctx)
	if err != nil {
		r.log.Error("resync: list computes", "err", err)
		return
	}
	for _, c := range cs {
		r.q.Add(c.ID)
	}
	ids, err := r.cfg.Runtime.List(ctx)
	if err != nil {
		r.log.Error("resync: list runtime instances", "err", err)
		return
	}
	for _, id := range ids {
		r.q.Add(id)
	}
}

func (r *Reconciler) handle(ctx context.Context, id string) {
	if ctx.Err() != nil {
		return
	}
	again, err := r.Reconcile(ctx, id)
	if err != nil && ctx.Err() == nil {
		r.mu.Lock()
		r.retries[id]++
		n := r.retries[id]
		r.mu.Unlock()
		backoff := min(time.Duration(1<<min(n, 6))*100*time.Millisecond, 10*time.Second)
		r.log.Warn("reconcile failed; will retry", "instance", id, "attempt", n, "in", backoff, "err", err)
		time.AfterFunc(backoff, func() { r.q.Add(id) })
		return
	}
	r.mu.Lock()
	delete(r.retries, id)
	r.mu.Unlock()
	if again {
		r.q.Add(id)
	}
}

func (r *Reconciler) step(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.StepTimeout)
}

// Reconcile makes one pass over one instance. again asks for another pass
// at once (the instance changed under it); an error asks for a retry later.
func (r *Reconciler) Reconcile(ctx context.Context, id string) (again bool, err error) {
	c, err := r.cfg.Store.GetComputeByID(ctx, id)
	if chub.IsNotFound(err) {
		// Not in the store: anything the runtime holds is an orphan.
		sctx, cancel := r.step(ctx)
		defer cancel()
		if err := r.cfg.Runtime.Destroy(sctx, id); err != nil {
			return false, fmt.Errorf("destroy orphan %s: %w", id, err)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	sctx, cancel := r.step(ctx)
	defer cancel()
	st, err := r.cfg.Runtime.Inspect(sctx, id)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", c.Name, err)
	}
	switch c.Desired {
	case chub.DesiredDeleted:
		return r.delete(ctx, c)
	case chub.DesiredStopped:
		return r.stop(ctx, c, st)
	default:
		return r.run(ctx, c, st)
	}
}

func (r *Reconciler) delete(ctx context.Context, c *chub.Compute) (bool, error) {
	sctx, cancel := r.step(ctx)
	defer cancel()
	if err := r.cfg.Runtime.Destroy(sctx, c.ID); err != nil {
		return false, fmt.Errorf("destroy %s: %w", c.Name, err)
	}
	op, err := r.activeOp(ctx, c)
	if err != nil {
		return false, err
	}
	r.finish(op, nil)
	if err := r.cfg.Store.RemoveCompute(ctx, c, op); err != nil {
		if chub.ErrorKind(err) == chub.KindConflict {
			return true, nil
		}
		return false, err
	}
	r.log.Info("compute deleted", "compute", c.Name, "id", c.ID)
	return false, nil
}

func (r *Reconciler) stop(ctx context.Context, c *chub.Compute, st chub.InstanceStatus) (bool, error) {
	if st.Phase == chub.PhaseRunning && r.cfg.BusyJobs != nil {
		// A stop waits for the jobs that run (a stop with cancelJobs has
		// canceled them already): the instance stays Stopping meanwhile.
		n, err := r.cfg.BusyJobs(ctx, c.ID)
		if err != nil {
			return false, fmt.Errorf("stop %s: count its running jobs: %w", c.Name, err)
		}
		if n > 0 {
			r.log.Debug("stop waits for jobs", "compute", c.Name, "jobs", n)
			id := c.ID
			time.AfterFunc(r.cfg.JobWait, func() { r.Wake(id) })
			return false, nil
		}
	}
	if st.Phase == chub.PhaseRunning {
		sctx, cancel := r.step(ctx)
		defer cancel()
		if err := r.cfg.Runtime.Stop(sctx, c.ID, r.cfg.StopGrace); err != nil {
			return r.fail(ctx, c, chub.StateUnusable, fmt.Errorf("stop: %w", err))
		}
	}
	return r.settle(ctx, c, chub.StateStopped)
}

func (r *Reconciler) run(ctx context.Context, c *chub.Compute, st chub.InstanceStatus) (bool, error) {
	if c.ActiveOperation == "" && slices.Contains([]chub.State{chub.StateCreateFailed, chub.StateUnusable}, c.State) {
		return false, nil // failed: left as it is until the user acts
	}
	size, ok := r.cfg.Catalog().Lookup(c.Settings.VMSize)
	if !ok {
		return r.fail(ctx, c, failState(c), chub.Invalid("InvalidVmSize", "properties.properties.vmSize", "VM size %q is no longer in the catalog", c.Settings.VMSize))
	}
	spec := lifecycle.SpecFor(c, size)
	if c.RestartPending {
		if st.Phase == chub.PhaseRunning {
			sctx, cancel := r.step(ctx)
			err := r.cfg.Runtime.Stop(sctx, c.ID, r.cfg.StopGrace)
			cancel()
			if err != nil {
				return r.fail(ctx, c, chub.StateUnusable, fmt.Errorf("restart: stop: %w", err))
			}
		}
		c.RestartPending = false
		if err := r.cfg.Store.UpdateCompute(ctx, c); err != nil {
			return chub.ErrorKind(err) == chub.KindConflict, ignoreConflict(err)
		}
		st.Phase = chub.PhaseStopped
	}
	if st.Phase != chub.PhaseRunning {
		sctx, cancel := r.step(ctx)
		defer cancel()
		if st.Phase == chub.PhaseAbsent {
			if err := r.cfg.Runtime.Create(sctx, spec); err != nil {
				return r.fail(ctx, c, failState(c), fmt.Errorf("create disk: %w", err))
			}
		}
		if err := r.cfg.Runtime.Start(sctx, spec); err != nil {
			return r.fail(ctx, c, failState(c), fmt.Errorf("start: %w", err))
		}
	}
	return r.settle(ctx, c, chub.StateRunning)
}

func failState(c *chub.Compute) chub.State {
	if c.State == chub.StateCreating || c.State == chub.StateCreateFailed {
		return chub.StateCreateFailed
	}
	return chub.StateUnusable
}

func ignoreConflict(err error) error {
	if chub.ErrorKind(err) == chub.KindConflict {
		return nil
	}
	return err
}

// activeOp loads the operation in flight, or nil when there is none.
func (r *Reconciler) activeOp(ctx context.Context, c *chub.Compute) (*chub.Operation, error) {
	if c.ActiveOperation == "" {
		return nil, nil
	}
	op, err := r.cfg.Store.GetOperation(ctx, c.ActiveOperation)
	if chub.IsNotFound(err) {
		return nil, nil
	}
	return op, err
}

func (r *Reconciler) finish(op *chub.Operation, failure error) {
	if op == nil {
		return
	}
	op.EndTime = r.cfg.Now().UTC()
	op.Status = chub.OpSucceeded
	if failure != nil {
		d := chub.Detail(failure)
		op.Status, op.Error = chub.OpFailed, &d
	}
}

// settle records that the instance reached state, ending its operation.
func (r *Reconciler) settle(ctx context.Context, c *chub.Compute, state chub.State) (bool, error) {
	op, err := r.activeOp(ctx, c)
	if err != nil {
		return false, err
	}
	if c.State == state && op == nil && len(c.Errors) == 0 {
		if state == chub.StateRunning {
			return r.observe(ctx, c)
		}
		return false, nil // nothing to write
	}
	r.finish(op, nil)
	c.State, c.ActiveOperation, c.Errors = state, "", nil
	if op != nil && c.LastOperation != nil && c.LastOperation.OperationName == op.Name {
		c.LastOperation.OperationStatus = string(chub.OpSucceeded)
	}
	if err := r.cfg.Store.UpdateCompute(ctx, c, op); err != nil {
		return chub.ErrorKind(err) == chub.KindConflict, ignoreConflict(err)
	}
	r.log.Info("compute converged", "compute", c.Name, "state", state)
	if r.cfg.Converged != nil {
		r.cfg.Converged(c.ID, state)
	}
	if state == chub.StateRunning {
		return r.observe(ctx, c)
	}
	return false, nil
}

// observe refreshes what is recorded of a running instance, writing only
// on a change.
func (r *Reconciler) observe(ctx context.Context, c *chub.Compute) (bool, error) {
	if r.cfg.Observe == nil {
		return false, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	obs, err := r.cfg.Observe(sctx, c.ID)
	cancel()
	if err != nil {
		r.log.Warn("observe instance", "compute", c.Name, "err", err)
		return false, nil
	}
	if st, err := r.cfg.Runtime.Inspect(ctx, c.ID); err == nil {
		obs.PrivateIP = st.PrivateIP
	}
	if reflect.DeepEqual(obs, c.Observed) {
		return false, nil
	}
	c.Observed = obs
	if err := r.cfg.Store.UpdateCompute(ctx, c); err != nil {
		return chub.ErrorKind(err) == chub.KindConflict, ignoreConflict(err)
	}
	return false, nil
}

// fail records a runtime failure on the instance and its operation.
func (r *Reconciler) fail(ctx context.Context, c *chub.Compute, state chub.State, failure error) (bool, error) {
	r.log.Error("compute operation failed", "compute", c.Name, "state", state, "err", failure)
	op, err := r.activeOp(ctx, c)
	if err != nil {
		return false, err
	}
	d := chub.Detail(failure)
	var ce *chub.Error
	if !errors.As(failure, &ce) {
		d.Code = "RuntimeError"
	}
	r.finish(op, failure)
	if op != nil {
		op.Error = &d
	}
	c.State, c.ActiveOperation, c.Errors = state, "", []chub.ErrorDetail{d}
	if c.LastOperation != nil {
		c.LastOperation.OperationStatus = c.LastOperation.OperationName.FailedStatus()
	}
	if err := r.cfg.Store.UpdateCompute(ctx, c, op); err != nil {
		return chub.ErrorKind(err) == chub.KindConflict, ignoreConflict(err)
	}
	return false, nil
}
