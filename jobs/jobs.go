// Package jobs runs the job queues of compute instances: one queue per
// instance, as many jobs at once as the instance allows (one per vCPU of
// its size unless set lower), the rest Queued in submission order. Like the
// reconciler it is level-triggered: each pass reads the store and asks the
// instance's agent, so it converges after a crash or a restart.
package jobs

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/agentclient"
	"github.com/computehub/chub/artifacts"
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

// Controller runs the queues.
type Controller struct {
	cfg Config
}

// New returns a controller; call Run to start it.
func New(cfg Config) *Controller { return &Controller{cfg: cfg} }

// Run runs the queues until ctx ends.
func (c *Controller) Run(ctx context.Context) {}

// Wake asks for the queue of instance computeID to be looked at now.
func (c *Controller) Wake(computeID string) {}

// Cancel asks for one job to end: a job not yet running is Canceled at
// once, a running one becomes CancelRequested until its processes are gone.
// reason is recorded in the job's message.
func (c *Controller) Cancel(ctx context.Context, j *chub.Job, by chub.Principal, reason string) (*chub.Job, error) {
	return nil, chub.Errorf(chub.KindInternal, "NotImplemented", "", "jobs: not implemented yet")
}

// CancelAll cancels every active job of an instance (stop --cancel-jobs,
// delete).
func (c *Controller) CancelAll(ctx context.Context, computeID string, by chub.Principal, reason string) error {
	return chub.Errorf(chub.KindInternal, "NotImplemented", "", "jobs: not implemented yet")
}

// BusyJobs counts the jobs of an instance that hold a slot (Preparing,
// Running, Finalizing, CancelRequested): a stop waits while it is not 0.
func (c *Controller) BusyJobs(ctx context.Context, computeID string) (int, error) { return 0, nil }

// StreamLogs writes log stream of job j to w from offset: from the agent
// while the job runs, from the artifact store once kept. With follow it
// goes on until the job has ended and everything was written.
func (c *Controller) StreamLogs(ctx context.Context, j *chub.Job, stream string, offset int64, follow bool, w io.Writer) error {
	return chub.Errorf(chub.KindInternal, "NotImplemented", "", "jobs: not implemented yet")
}
