// Package jobs runs the job queues of compute instances: one queue per
// instance, as many jobs at once as the instance allows (one per vCPU of
// its size unless set lower), the rest Queued in submission order. Like the
// reconciler it is level-triggered: each pass reads the store and asks the
// instance's agent, so it converges after a crash or a restart.
package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/agentclient"
	"github.com/computehub/chub/artifacts"
	"github.com/computehub/chub/jobproto"
	"github.com/computehub/chub/workqueue"
)

// Config wires the controller.
type Config struct {
	Store     chub.Store
	Runtime   chub.Runtime
	Agents    *agentclient.Client
	Artifacts *artifacts.Store
	Catalog   func() *chub.Catalog
	Logger    *slog.Logger
	Now       func() time.Time
	// Resync is how often every instance with active jobs is looked at
	// even without a wake (default 2s).
	Resync time.Duration
	// WakeInstance asks the reconciler to look at an instance (a stop
	// waiting for its jobs); may be nil.
	WakeInstance func(computeID string)
}

// agentAPI is what the controller asks of an instance's agent
// (*agentclient.Client; a fake in this package's tests).
type agentAPI interface {
	PutJob(ctx context.Context, id string, spec jobproto.Spec) (jobproto.Status, error)
	PutJobCode(ctx context.Context, id, job string, tarGz io.Reader) error
	StartJob(ctx context.Context, id, job string) (jobproto.Status, error)
	GoJob(ctx context.Context, id, job string) (jobproto.Status, error)
	CancelJob(ctx context.Context, id, job string) (jobproto.Status, error)
	JobStatus(ctx context.Context, id, job string) (jobproto.Status, error)
	ListJobs(ctx context.Context, id string) ([]jobproto.Status, error)
	JobLogs(ctx context.Context, id, job, stream string, offset int64, follow bool) (io.ReadCloser, error)
	JobOutputs(ctx context.Context, id, job string) (io.ReadCloser, error)
	DeleteJob(ctx context.Context, id, job string) error
}

var _ agentAPI = (*agentclient.Client)(nil)

// Timings of the controller.
const (
	// workers is how many instances are looked at at once.
	workers = 4
	// timeoutGrace is how long past its limit a job may run before the
	// server ends it itself (the agent ends it at the limit).
	timeoutGrace = 10 * time.Second
	// cancelGrace is how long a cancel's SIGTERM gets before the job's
	// cgroup is killed.
	cancelGrace = 15 * time.Second
	// giveUp is how long past its deadline a job whose agent does not
	// report its end is waited for before it is recorded as ended.
	giveUp = 30 * time.Second
	// unhealthyFor is how long an instance may be unreachable (its agent
	// not answering) before its running jobs are recorded Failed.
	unhealthyFor = 30 * time.Second
	// pollYoung and pollOld are how often the agent of an instance with
	// jobs running is asked whether one ended: often while a job is
	// young (short jobs end soon and the next one waits), less once
	// every job has run pollAge.
	pollYoung = 50 * time.Millisecond
	pollOld   = 250 * time.Millisecond
	pollAge   = 30 * time.Second
	// stepTimeout bounds one pass.
	stepTimeout = 2 * time.Minute
)

// Controller runs the queues.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	agent  agentAPI
	placer chub.JobPlacer // nil when the runtime cannot contain jobs
	q      *workqueue.Queue

	mu        sync.Mutex // guards the fields below
	retries   map[string]int
	unhealthy map[string]time.Time // instance -> since when its agent has not answered
	watchers  map[string]*watcher  // instance -> the poller of its running jobs
	changed   chan struct{}        // closed (and replaced) on every job write
	runCtx    context.Context      // Run's, for the watchers
}

// New returns a controller; call Run to start it.
func New(cfg Config) *Controller {
	if cfg.Resync <= 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Controller{cfg: cfg, log: cfg.Logger, q: workqueue.New(),
		retries: map[string]int{}, unhealthy: map[string]time.Time{}, watchers: map[string]*watcher{},
		changed: make(chan struct{})}
	if cfg.Agents != nil {
		c.agent = cfg.Agents
	}
	if p, ok := cfg.Runtime.(chub.JobPlacer); ok {
		c.placer = p
	}
	return c
}

func (c *Controller) now() time.Time { return c.cfg.Now().UTC() }

// Run runs the queues until ctx ends: first a pass over every instance
// with active jobs, then whatever is woken, and all of them again each
// Resync.
func (c *Controller) Run(ctx context.Context) {
	c.mu.Lock()
	c.runCtx = ctx
	c.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id, ok := c.q.Get()
				if !ok {
					return
				}
				c.handle(ctx, id)
				c.q.Done(id)
			}
		}()
	}
	c.resyncAll(ctx)
	t := time.NewTicker(c.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.q.Close()
			wg.Wait()
			c.mu.Lock()
			for id, w := range c.watchers {
				w.stop()
				delete(c.watchers, id)
			}
			c.mu.Unlock()
			return
		case <-t.C:
			c.resyncAll(ctx)
		}
	}
}

// resyncAll queues every instance that has active jobs.
func (c *Controller) resyncAll(ctx context.Context) {
	js, err := c.cfg.Store.ListJobs(ctx, chub.JobFilter{Statuses: chub.ActiveJobStatuses, View: chub.JobViewAll})
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("jobs resync: list active jobs", "err", err)
		}
		return
	}
	seen := map[string]bool{}
	for _, j := range js {
		if !seen[j.ComputeID] {
			seen[j.ComputeID] = true
			c.q.Add(j.ComputeID)
		}
	}
}

// Wake asks for the queue of instance computeID to be looked at now.
func (c *Controller) Wake(computeID string) {
	if computeID != "" {
		c.q.Add(computeID)
	}
}

func (c *Controller) handle(ctx context.Context, id string) {
	if ctx.Err() != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, stepTimeout)
	again, err := c.pass(pctx, id)
	cancel()
	if err != nil && ctx.Err() == nil {
		c.mu.Lock()
		c.retries[id]++
		n := c.retries[id]
		c.mu.Unlock()
		backoff := min(time.Duration(1<<min(n, 6))*100*time.Millisecond, 10*time.Second)
		c.log.Warn("job queue pass failed; will retry", "instance", id, "attempt", n, "in", backoff, "err", err)
		time.AfterFunc(backoff, func() { c.q.Add(id) })
		return
	}
	c.mu.Lock()
	delete(c.retries, id)
	c.mu.Unlock()
	if again {
		c.q.Add(id)
	}
}

// notify tells the log followers that a job changed.
func (c *Controller) notify() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// changes is closed at the next job write.
func (c *Controller) changes() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// write stores the job after mutate, version-checked. On a conflict it
// re-reads the job and, while it is still in status from, applies mutate
// to the fresh copy and writes again; when the job moved on meanwhile it
// leaves the fresh copy in *j and reports ok false (look again).
func (c *Controller) write(ctx context.Context, j *chub.Job, from chub.JobStatus, mutate func(*chub.Job)) (ok bool, err error) {
	for attempt := 0; attempt < 8; attempt++ {
		if j.Status != from {
			return false, nil
		}
		next := *j
		mutate(&next)
		next.ModifiedAt = c.now()
		err := c.cfg.Store.UpdateJob(ctx, &next)
		if err == nil {
			old := j.Status
			*j = next
			c.notify()
			if old != j.Status {
				c.log.Info("job", "job", j.Name, "workspace", j.Scope.Workspace, "instance", instanceName(j), "status", j.Status, "from", old, "message", j.Message)
			}
			return true, nil
		}
		if chub.ErrorKind(err) != chub.KindConflict {
			return false, fmt.Errorf("write job %s: %w", j.Name, err)
		}
		fresh, err := c.cfg.Store.GetJobByID(ctx, j.ID)
		if err != nil {
			return false, fmt.Errorf("re-read job %s: %w", j.Name, err)
		}
		*j = *fresh
	}
	return false, fmt.Errorf("write job %s: it kept changing under the write", j.Name)
}

// Cancel asks for one job to end: a job not yet running is Canceled at
// once, a running one becomes CancelRequested until its processes are gone.
// reason is recorded in the job's message ("canceled by NAME: reason";
// a reason starting with "canceled" is the whole message). A job that has ended (or is
// Finalizing: its command has ended) is returned as it is.
func (c *Controller) Cancel(ctx context.Context, j *chub.Job, by chub.Principal, reason string) (*chub.Job, error) {
	cur, err := c.cfg.Store.GetJobByID(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	msg := cancelMessage(by, reason)
	for attempt := 0; attempt < 8; attempt++ {
		from := cur.Status
		var ok bool
		switch from {
		case chub.JobNotStarted, chub.JobQueued:
			ok, err = c.write(ctx, cur, from, func(n *chub.Job) {
				end := c.now()
				n.Status, n.Message, n.EndTime, n.ModifiedBy = chub.JobCanceled, msg, &end, by
			})
		case chub.JobPreparing, chub.JobRunning:
			ok, err = c.write(ctx, cur, from, func(n *chub.Job) {
				n.Status, n.Message, n.ModifiedBy = chub.JobCancelRequested, msg, by
			})
		default: // ended, ending, or a cancel on its way
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		if ok {
			c.Wake(cur.ComputeID)
			return cur, nil
		}
	}
	return nil, fmt.Errorf("cancel job %s: it kept changing", j.Name)
}

// cancelMessage is a canceled job's message: "canceled by NAME", and
// the reason after a colon; a reason that says "canceled..." itself is
// the message.
func cancelMessage(by chub.Principal, reason string) string {
	if strings.HasPrefix(strings.ToLower(reason), "canceled") {
		return reason
	}
	msg := "canceled"
	if by.UserName != "" {
		msg += " by " + by.UserName
	}
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}

// CancelAll cancels every active job of an instance (stop --cancel-jobs,
// delete).
func (c *Controller) CancelAll(ctx context.Context, computeID string, by chub.Principal, reason string) error {
	js, err := c.cfg.Store.ListJobs(ctx, chub.JobFilter{ComputeID: computeID, Statuses: chub.ActiveJobStatuses, View: chub.JobViewAll})
	if err != nil {
		return fmt.Errorf("list the jobs of instance %s: %w", computeID, err)
	}
	for _, j := range js {
		if _, err := c.Cancel(ctx, j, by, reason); err != nil {
			return fmt.Errorf("cancel job %s: %w", j.Name, err)
		}
	}
	c.Wake(computeID)
	return nil
}

// busyStatuses are the statuses of jobs that hold a slot.
var busyStatuses = []chub.JobStatus{chub.JobPreparing, chub.JobRunning, chub.JobFinalizing, chub.JobCancelRequested}

// BusyJobs counts the jobs of an instance that hold a slot (Preparing,
// Running, Finalizing, CancelRequested): a stop waits while it is not 0.
func (c *Controller) BusyJobs(ctx context.Context, computeID string) (int, error) {
	js, err := c.cfg.Store.ListJobs(ctx, chub.JobFilter{ComputeID: computeID, Statuses: busyStatuses, View: chub.JobViewAll})
	if err != nil {
		return 0, fmt.Errorf("list the running jobs of instance %s: %w", computeID, err)
	}
	return len(js), nil
}
