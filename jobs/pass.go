package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// instanceName is the name of the job's instance, from its ARM id.
func instanceName(j *chub.Job) string {
	id := j.Spec.ComputeID
	return id[strings.LastIndex(id, "/")+1:]
}

// view is what one pass knows of an instance.
type view struct {
	comp     *chub.Compute
	name     string
	alive    bool // the instance runs and its agent answers
	canStart bool // and it is meant to keep running: queued jobs may start
	// startedAt is when the instance last started (zero: not known).
	startedAt time.Time
	mu        sync.Mutex                 // guards agent and ended (jobs are started and finished together)
	agent     map[string]jobproto.Status // what the agent has, by job id
	// ended says a job ended during the pass.
	ended bool
}

func (v *view) agentStatus(job string) (jobproto.Status, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.agent[job]
	return s, ok
}

func (v *view) setAgent(s jobproto.Status) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.agent == nil {
		v.agent = map[string]jobproto.Status{}
	}
	v.agent[s.ID] = s
}

func (v *view) forget(job string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.agent, job)
}

func (v *view) agentStates() map[string]jobproto.Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := make(map[string]jobproto.Status, len(v.agent))
	for k, s := range v.agent {
		m[k] = s
	}
	return m
}

func (v *view) setEnded() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ended = true
}

func (v *view) hasEnded() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ended
}

// Error codes of jobs that ended otherwise than by their command's exit.
const (
	codeFailed      = "JobFailed"
	codeTimeout     = "JobTimeout"
	codeStopped     = "InstanceStopped"
	codeDeleted     = "InstanceDeleted"
	codeRestarted   = "InstanceRestarted"
	codeUnusable    = "InstanceUnusable"
	codePreparation = "JobPreparationFailed"
	codeOwner       = "AuthorizationFailed"
)

// pass looks at one instance's jobs once and moves each as far as it can.
// again asks for another pass at once (a job changed under it).
func (c *Controller) pass(ctx context.Context, computeID string) (again bool, err error) {
	js, err := c.cfg.Store.ListJobs(ctx, chub.JobFilter{ComputeID: computeID, Statuses: chub.ActiveJobStatuses, View: chub.JobViewAll})
	if err != nil {
		return false, fmt.Errorf("list jobs: %w", err)
	}
	if len(js) == 0 {
		c.unwatch(computeID)
		return false, nil
	}
	comp, err := c.cfg.Store.GetComputeByID(ctx, computeID)
	if chub.IsNotFound(err) {
		c.unwatch(computeID)
		return c.endAll(ctx, js, codeDeleted, "instance %s was deleted")
	}
	if err != nil {
		return false, fmt.Errorf("load instance: %w", err)
	}
	v := &view{comp: comp, name: comp.Name}
	st, err := c.cfg.Runtime.Inspect(ctx, computeID)
	if err != nil {
		return false, fmt.Errorf("inspect instance %s: %w", comp.Name, err)
	}
	v.startedAt = st.StartedAt
	switch st.Phase {
	case chub.PhaseRunning:
		if v.agent, err = c.agentJobs(ctx, computeID); chub.IsNotFound(err) {
			return c.agentTooOld(ctx, v, js)
		} else if err != nil {
			return c.unreachable(ctx, v, js, err)
		}
		v.alive = true
	case chub.PhaseFailed:
		return c.unreachable(ctx, v, js, errors.New(st.Message))
	}
	c.mu.Lock()
	delete(c.unhealthy, computeID)
	c.mu.Unlock()
	v.canStart = v.alive && comp.Desired == chub.DesiredRunning && !comp.RestartPending

	// First what runs: ended commands become Finalizing (their logs are
	// kept below, not holding a slot meanwhile), cancels and limits are
	// enforced.
	var busy []*chub.Job // holding a slot: Preparing, Running, CancelRequested
	var work []finishWork
	var workJobs []*chub.Job
	for _, j := range js {
		if !isBusy(j.Status) {
			continue
		}
		holds, fin, changed, err := c.step(ctx, v, j)
		if err != nil {
			return false, err
		}
		again = again || changed
		if holds {
			busy = append(busy, j)
		}
		if fin != nil {
			work, workJobs = append(work, fin), append(workJobs, nil)
		}
	}
	if v.alive {
		c.forgetStrays(ctx, v, js)
	}

	// Then the queue, in submission order: each job leaves it in that
	// order (its Preparing is written here); the agent's part of starting
	// is done below, the jobs together.
	slots := c.slots(comp)
	starting := 0
	for _, j := range js {
		if j.Status != chub.JobNotStarted && j.Status != chub.JobQueued {
			continue
		}
		var changed bool
		switch {
		case comp.Desired == chub.DesiredDeleted:
			changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codeDeleted, Message: fmt.Sprintf("instance %s is being deleted", v.name)}, nil)
		case !v.canStart:
			changed, err = c.queue(ctx, j, fmt.Sprintf("waiting for instance %s to start", v.name))
		case j.CreatedBy.UserID != comp.Owner():
			changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codeOwner, Message: fmt.Sprintf(
				"a job runs on an instance only for its user, and instance %s is now assigned to another user; submit the job to an instance of yours", v.name)}, nil)
		case len(busy)+starting < slots:
			var ok bool
			ok, err = c.leaveQueue(ctx, v, j)
			changed = !ok
			if ok {
				starting++
				j := j
				work, workJobs = append(work, func(ctx context.Context) (bool, bool, error) {
					return c.prepareAndRun(ctx, v, j, jobproto.Status{}, false)
				}), append(workJobs, j)
			}
		default:
			changed, err = c.queue(ctx, j, fmt.Sprintf("waiting for a slot: %d of %d running on %s", len(busy)+starting, slots, v.name))
		}
		if err != nil {
			return false, err
		}
		again = again || changed
	}

	// The slow parts, the jobs together: starting in the agent, keeping
	// the logs and outputs of ended ones.
	holds, changed, err := c.together(ctx, work)
	if err != nil {
		return false, err
	}
	again = again || changed
	for i, j := range workJobs {
		if j != nil && holds[i] {
			busy = append(busy, j)
		} else if j != nil {
			again = true // a start failed: its slot is free again
		}
	}

	if len(busy) > 0 && v.alive {
		c.watch(computeID, v.agentStates(), busy)
	} else {
		c.unwatch(computeID)
	}
	if v.hasEnded() && len(busy) == 0 && comp.Desired != chub.DesiredRunning && c.cfg.WakeInstance != nil {
		c.cfg.WakeInstance(computeID) // a stop waiting for the jobs
	}
	return again, nil
}

// parallel is how many jobs of one instance are started or finished at once.
const parallel = 8

// together runs work concurrently (at most parallel at once); holds[i]
// is work[i]'s, changed whether any asked for another pass, err the first
// error.
func (c *Controller) together(ctx context.Context, work []finishWork) (holds []bool, changed bool, err error) {
	holds = make([]bool, len(work))
	if len(work) == 1 {
		h, ch, err := work[0](ctx)
		holds[0] = h
		return holds, ch, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i, w := range work {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, ch, e := w(ctx)
			mu.Lock()
			defer mu.Unlock()
			holds[i], changed = h, changed || ch
			if e != nil && err == nil {
				err = e
			}
		}()
	}
	wg.Wait()
	return holds, changed, err
}

func isBusy(s chub.JobStatus) bool {
	return s == chub.JobPreparing || s == chub.JobRunning || s == chub.JobFinalizing || s == chub.JobCancelRequested
}

// slots is how many jobs the instance runs at once.
func (c *Controller) slots(comp *chub.Compute) int {
	n := 1
	if c.cfg.Catalog != nil {
		if size, ok := c.cfg.Catalog().Lookup(comp.Settings.VMSize); ok && size.VCPUs > 0 {
			n = size.VCPUs
		}
	}
	if m := comp.Settings.MaxConcurrentJobs; m > 0 && m < n {
		n = m
	}
	return n
}

func (c *Controller) agentJobs(ctx context.Context, computeID string) (map[string]jobproto.Status, error) {
	if c.agent == nil {
		return nil, errors.New("no agent client")
	}
	list, err := c.agent.ListJobs(ctx, computeID)
	if err != nil {
		return nil, err
	}
	m := make(map[string]jobproto.Status, len(list))
	for _, s := range list {
		m[s.ID] = s
	}
	return m, nil
}

// unreachable handles an instance that runs but whose agent does not
// answer: a hiccup is waited out (the pass is retried); once it has lasted
// unhealthyFor, the jobs that held a slot are recorded Failed.
func (c *Controller) unreachable(ctx context.Context, v *view, js []*chub.Job, cause error) (bool, error) {
	c.mu.Lock()
	since, ok := c.unhealthy[v.comp.ID]
	if !ok {
		since = c.now()
		c.unhealthy[v.comp.ID] = since
	}
	c.mu.Unlock()
	if c.now().Sub(since) < unhealthyFor {
		return false, fmt.Errorf("instance %s: its agent does not answer: %w", v.name, cause)
	}
	var busy []*chub.Job
	for _, j := range js {
		if isBusy(j.Status) {
			busy = append(busy, j)
		}
	}
	c.unwatch(v.comp.ID)
	_, err := c.endAll(ctx, busy, codeUnusable, "instance %s stopped answering while the job ran ("+strings.ReplaceAll(cause.Error(), "%", "%%")+")")
	return false, err
}

// agentTooOld handles an instance whose agent predates jobs (it started
// before the server was upgraded): what held a slot cannot have run there
// and fails; queued jobs wait for a restart, and say so.
func (c *Controller) agentTooOld(ctx context.Context, v *view, js []*chub.Job) (bool, error) {
	c.unwatch(v.comp.ID)
	again := false
	for _, j := range js {
		var changed bool
		var err error
		switch {
		case j.Status == chub.JobCancelRequested:
			changed, err = c.end(ctx, v, j, chub.JobCanceled, nil, nil)
		case isBusy(j.Status):
			changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codeUnusable, Message: fmt.Sprintf(
				"instance %s runs an agent older than jobs; restart it (chub computetarget restart computeinstance -n %s) and submit the job again", v.name, v.name)}, nil)
		default:
			changed, err = c.queue(ctx, j, fmt.Sprintf("waiting for instance %s to restart: it runs an agent older than jobs (chub computetarget restart computeinstance -n %s)", v.name, v.name))
		}
		if err != nil {
			return false, err
		}
		again = again || changed
	}
	return again, nil
}

// endAll records every job as ended because its instance is gone: those
// with a cancel on their way Canceled, the others Failed with code and
// the message (a format taking the instance's name).
func (c *Controller) endAll(ctx context.Context, js []*chub.Job, code, format string) (bool, error) {
	again := false
	for _, j := range js {
		v := &view{name: instanceName(j)}
		var changed bool
		var err error
		if j.Status == chub.JobCancelRequested {
			changed, err = c.end(ctx, v, j, chub.JobCanceled, nil, nil)
		} else {
			changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: code, Message: fmt.Sprintf(format, v.name)}, nil)
		}
		if err != nil {
			return false, err
		}
		again = again || changed
	}
	return again, nil
}

// queue records a job waiting, with why.
func (c *Controller) queue(ctx context.Context, j *chub.Job, msg string) (changed bool, err error) {
	if j.Status == chub.JobQueued && j.Message == msg {
		return false, nil
	}
	ok, err := c.write(ctx, j, j.Status, func(n *chub.Job) { n.Status, n.Message = chub.JobQueued, msg })
	return !ok, err
}

// end records a terminal status. For Canceled the job's message (the
// cancel's reason) is kept; otherwise the message says how it ended.
func (c *Controller) end(ctx context.Context, v *view, j *chub.Job, status chub.JobStatus, e *chub.ErrorDetail, exit *int) (changed bool, err error) {
	ok, err := c.write(ctx, j, j.Status, func(n *chub.Job) {
		end := c.now()
		n.Status, n.EndTime, n.Error = status, &end, e
		if exit != nil {
			n.ExitCode = exit
		}
		n.Message = endMessage(n)
	})
	if ok {
		v.setEnded()
	}
	return !ok, err
}

// finishWork is the slow end of a job, done after the queue moved.
type finishWork = func(context.Context) (holds, changed bool, err error)

// step moves a job that holds a slot or ends. holds says it (still)
// holds one; fin, when set, is what is left to do to end it (keeping its
// logs and outputs): the pass does it after starting what the freed
// slots allow.
func (c *Controller) step(ctx context.Context, v *view, j *chub.Job) (holds bool, fin finishWork, changed bool, err error) {
	as, known := v.agentStatus(j.ID)
	switch {
	case !v.alive:
		switch {
		case j.Status == chub.JobCancelRequested:
			changed, err = c.end(ctx, v, j, chub.JobCanceled, nil, nil)
		case j.Status == chub.JobFinalizing:
			// Its command ended before the instance did: what was decided stands.
			changed, err = c.finish(ctx, v, j, false, nil, time.Time{})
		case v.comp.Desired == chub.DesiredDeleted:
			changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codeDeleted, Message: fmt.Sprintf("instance %s was deleted while the job ran", v.name)}, nil)
		default:
			changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codeStopped, Message: fmt.Sprintf("instance %s stopped while the job ran", v.name)}, nil)
		}
		return false, nil, changed, err
	case j.Status == chub.JobPreparing:
		// A preparation cut short (a restart of the server): go on from
		// where the agent is.
		holds, changed, err = c.prepareAndRun(ctx, v, j, as, known)
		return holds, nil, changed, err
	case j.Status == chub.JobFinalizing:
		if !known {
			changed, err = c.finish(ctx, v, j, false, nil, time.Time{})
			return false, nil, changed, err
		}
		return false, c.finisher(v, j, as), false, nil
	case j.Status == chub.JobCancelRequested:
		return c.canceling(ctx, v, j, as, known)
	}
	// Running.
	if !known {
		changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codeRestarted, Message: fmt.Sprintf("instance %s restarted while the job ran", v.name)}, nil)
		return false, nil, changed, err
	}
	switch as.State {
	case jobproto.StateExited:
		return c.finalizing(ctx, v, j, as)
	case jobproto.StateCreated, jobproto.StateHeld:
		holds, changed, err = c.prepareAndRun(ctx, v, j, as, known)
		return holds, nil, changed, err
	}
	// Still running: the server holds the limit too.
	if j.Spec.Timeout > 0 && j.StartTime != nil {
		deadline := j.StartTime.Add(j.Spec.Timeout + timeoutGrace)
		if c.now().After(deadline) {
			c.log.Info("job ran past its limit; ending it", "job", j.Name, "instance", v.name, "timeout", j.Spec.Timeout)
			c.kill(ctx, v, j, true)
			if c.now().After(deadline.Add(giveUp)) {
				// The agent does not report its end: record it anyway.
				return c.finalizing(ctx, v, j, jobproto.Status{ID: j.ID, State: jobproto.StateExited, TimedOut: true})
			}
		}
	}
	return true, nil, false, nil
}

// kill ends a job's processes: the agent's cancel (SIGTERM, grace,
// SIGKILL), and with hard the runtime's kill of its cgroup as well.
func (c *Controller) kill(ctx context.Context, v *view, j *chub.Job, hard bool) {
	if _, err := c.agent.CancelJob(ctx, v.comp.ID, j.ID); err != nil && !chub.IsNotFound(err) {
		c.log.Warn("cancel job at the agent", "job", j.Name, "instance", v.name, "err", err)
	}
	if hard && c.placer != nil {
		if err := c.placer.KillJob(ctx, v.comp.ID, j.ID); err != nil {
			c.log.Warn("kill job cgroup", "job", j.Name, "instance", v.name, "err", err)
		}
	}
}

// canceling drives a CancelRequested job to Canceled.
func (c *Controller) canceling(ctx context.Context, v *view, j *chub.Job, as jobproto.Status, known bool) (holds bool, fin finishWork, changed bool, err error) {
	if !known || as.State == jobproto.StateCreated {
		if known {
			c.cleanup(ctx, v, j)
		}
		changed, err = c.end(ctx, v, j, chub.JobCanceled, nil, nil)
		return false, nil, changed, err
	}
	if as.State == jobproto.StateExited {
		return false, c.finisher(v, j, as), false, nil
	}
	hard := c.now().Sub(j.ModifiedAt) > cancelGrace
	c.kill(ctx, v, j, hard)
	if hard && c.now().Sub(j.ModifiedAt) > cancelGrace+giveUp {
		return false, c.finisher(v, j, jobproto.Status{ID: j.ID, State: jobproto.StateExited, Canceled: true}), false, nil
	}
	// Look again: the agent's cancel answers before the processes are
	// gone, but a job held or just started ends at once.
	if st, err := c.agent.JobStatus(ctx, v.comp.ID, j.ID); err == nil && st.State == jobproto.StateExited {
		return false, c.finisher(v, j, st), false, nil
	}
	return true, nil, false, nil
}

// leaveQueue records that a queued job starts: Queued (when it was not
// yet), then Preparing. ok false: it changed meanwhile.
func (c *Controller) leaveQueue(ctx context.Context, v *view, j *chub.Job) (ok bool, err error) {
	if j.Status == chub.JobNotStarted {
		ok, err := c.write(ctx, j, chub.JobNotStarted, func(n *chub.Job) { n.Status, n.Message = chub.JobQueued, "starting on "+v.name })
		if err != nil || !ok {
			return false, err
		}
	}
	return c.write(ctx, j, chub.JobQueued, func(n *chub.Job) { n.Status, n.Message = chub.JobPreparing, "preparing on "+v.name })
}

// spec is the job as the agent runs it; the same job gives the same spec.
func spec(j *chub.Job) (jobproto.Spec, error) {
	cmd, err := j.Spec.ExpandCommand(func(n string) string { return jobproto.OutputsDir(j.ID) + "/" + n })
	if err != nil {
		return jobproto.Spec{}, err
	}
	keys := make([]string, 0, len(j.Spec.EnvironmentVariables))
	for k := range j.Spec.EnvironmentVariables {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, k+"="+j.Spec.EnvironmentVariables[k])
	}
	exp := j.Spec.ExperimentName
	if exp == "" {
		exp = "Default"
	}
	env = append(env, "AZUREML_RUN_ID="+j.Name, "AZUREML_EXPERIMENT_NAME="+exp, "CHUB_JOB_NAME="+j.Name, "CHUB_OUTPUTS_DIR="+jobproto.OutputsDir(j.ID))
	outs := make([]string, 0, len(j.Spec.Outputs))
	for n := range j.Spec.Outputs {
		outs = append(outs, n)
	}
	sort.Strings(outs)
	return jobproto.Spec{ID: j.ID, Command: cmd, Env: env, Outputs: outs, Timeout: j.Spec.Timeout}, nil
}

// prepareAndRun goes on with a Preparing job from where the agent has it
// (nothing, created, held) to Running.
func (c *Controller) prepareAndRun(ctx context.Context, v *view, j *chub.Job, as jobproto.Status, known bool) (holds, changed bool, err error) {
	from := j.Status
	st, perr := c.prepare(ctx, v, j, as, known)
	if perr != nil {
		if ctx.Err() != nil {
			return true, false, ctx.Err() // shutting down: the next start goes on
		}
		c.cleanup(ctx, v, j)
		changed, err = c.end(ctx, v, j, chub.JobFailed, &chub.ErrorDetail{Code: codePreparation,
			Message: fmt.Sprintf("the job could not be started on instance %s: %v", v.name, perr)}, nil)
		return false, changed, err
	}
	st.ID = j.ID
	v.setAgent(st)
	if from == chub.JobRunning {
		return true, false, nil
	}
	ok, err := c.write(ctx, j, from, func(n *chub.Job) {
		t := c.now()
		n.Status, n.Message, n.StartTime = chub.JobRunning, "running on "+v.name, &t
	})
	if err != nil {
		return true, false, err
	}
	return true, !ok, nil
}

// prepare makes the job run in the agent: its directories, its code, its
// supervisor (placed in the job's cgroup), then its command.
func (c *Controller) prepare(ctx context.Context, v *view, j *chub.Job, as jobproto.Status, known bool) (jobproto.Status, error) {
	id := v.comp.ID
	sp, err := spec(j)
	if err != nil {
		return as, err
	}
	if !known {
		if as, err = c.agent.PutJob(ctx, id, sp); err != nil {
			return as, fmt.Errorf("make its directories: %w", err)
		}
	}
	if as.State == jobproto.StateCreated {
		if j.Spec.CodeID != "" {
			if err := c.putCode(ctx, v, j); err != nil {
				return as, err
			}
		}
		if as, err = c.agent.StartJob(ctx, id, j.ID); err != nil {
			return as, fmt.Errorf("start its supervisor: %w", err)
		}
	}
	if as.State == jobproto.StateHeld {
		if c.placer != nil {
			if err := c.placer.PlaceJob(ctx, id, j.ID, as.PID); err != nil {
				return as, fmt.Errorf("place it in its cgroup: %w", err)
			}
		}
		if as, err = c.agent.GoJob(ctx, id, j.ID); err != nil {
			return as, fmt.Errorf("run its command: %w", err)
		}
	}
	return as, nil
}

// putCode copies the job's code snapshot into its working directory.
func (c *Controller) putCode(ctx context.Context, v *view, j *chub.Job) error {
	name, version, err := codeRef(j.Spec.CodeID)
	if err != nil {
		return err
	}
	a, err := c.cfg.Store.GetAsset(ctx, chub.AssetCode, j.Scope, name, version)
	if err != nil {
		return fmt.Errorf("code %s version %s: %w", name, version, err)
	}
	blobID, err := blobRef(a.CodeURI)
	if err != nil {
		return fmt.Errorf("code %s version %s: %w", name, version, err)
	}
	b, err := c.cfg.Store.GetBlob(ctx, blobID)
	if err != nil {
		return fmt.Errorf("code %s version %s: its content: %w", name, version, err)
	}
	if !b.Ready || b.WorkspaceID != j.WorkspaceID {
		return fmt.Errorf("code %s version %s: its content was never uploaded to this workspace", name, version)
	}
	if c.cfg.Artifacts == nil {
		return errors.New("no artifact store")
	}
	f, err := c.cfg.Artifacts.OpenBlob(blobID)
	if err != nil {
		return fmt.Errorf("code %s version %s: open its content: %w", name, version, err)
	}
	defer f.Close()
	if err := c.agent.PutJobCode(ctx, v.comp.ID, j.ID, f); err != nil {
		return fmt.Errorf("copy code %s version %s into the instance: %w", name, version, err)
	}
	return nil
}

// codeRef parses a code version's ARM id (.../codes/NAME/versions/V).
func codeRef(id string) (name, version string, err error) {
	parts := strings.Split(id, "/")
	n := len(parts)
	if n < 4 || !strings.EqualFold(parts[n-4], "codes") || !strings.EqualFold(parts[n-2], "versions") {
		return "", "", fmt.Errorf("code id %q is not a code version's id", id)
	}
	return parts[n-3], parts[n-1], nil
}

// blobRef is the blob id a codeUri names (.../blobs/ID[?...]).
func blobRef(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("codeUri %q: %w", uri, err)
	}
	p := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndex(p, "/blobs/")
	if i < 0 || strings.Contains(p[i+len("/blobs/"):], "/") || p[i+len("/blobs/"):] == "" {
		return "", fmt.Errorf("codeUri %q names no blob of this server", uri)
	}
	return p[i+len("/blobs/"):], nil
}

// outcome is how a job whose command ended ends.
func outcome(j *chub.Job, as jobproto.Status) (chub.JobStatus, *chub.ErrorDetail) {
	if j.Status == chub.JobCancelRequested {
		return chub.JobCanceled, nil
	}
	limit := "limits.timeout"
	timedOut := as.TimedOut
	if !timedOut && as.Canceled && j.Spec.Timeout > 0 && j.StartTime != nil && !as.EndedAt.IsZero() && as.EndedAt.Sub(*j.StartTime) >= j.Spec.Timeout {
		timedOut = true // ended by the server's own limit
	}
	switch {
	case timedOut:
		return chub.JobFailed, &chub.ErrorDetail{Code: codeTimeout, Message: fmt.Sprintf(
			"the job ran longer than its limit of %s (%s) and was ended", chub.FormatISODuration(j.Spec.Timeout), limit)}
	case as.Canceled:
		return chub.JobFailed, &chub.ErrorDetail{Code: codeFailed, Message: "the job was ended from inside the instance"}
	case as.ExitCode == nil:
		msg := "the command did not start"
		if as.Error != "" {
			msg += ": " + as.Error
		}
		return chub.JobFailed, &chub.ErrorDetail{Code: codeFailed, Message: msg}
	case *as.ExitCode != 0:
		msg := fmt.Sprintf("the command exited with code %d", *as.ExitCode)
		if as.Error != "" {
			msg += ": " + as.Error
		}
		return chub.JobFailed, &chub.ErrorDetail{Code: codeFailed, Message: msg}
	}
	return chub.JobCompleted, nil
}

// finalizing records that a job's command ended (Finalizing, with its
// exit code and error; a canceled job goes straight on) and returns the
// rest of its end.
func (c *Controller) finalizing(ctx context.Context, v *view, j *chub.Job, as jobproto.Status) (holds bool, fin finishWork, changed bool, err error) {
	if j.Status == chub.JobRunning {
		_, e := outcome(j, as)
		if as.ExitCode == nil && j.StartTime != nil && v.startedAt.After(*j.StartTime) {
			// The instance restarted under the job (killed, then started
			// again before a pass saw it stopped): its new agent found the
			// job ended without an exit code.
			e = &chub.ErrorDetail{Code: codeRestarted, Message: fmt.Sprintf("instance %s restarted while the job ran", v.name)}
		}
		ok, err := c.write(ctx, j, chub.JobRunning, func(n *chub.Job) {
			n.Status, n.ExitCode, n.Error, n.Message = chub.JobFinalizing, as.ExitCode, e, "keeping its logs and outputs"
		})
		if err != nil || !ok {
			return false, nil, true, err
		}
	}
	return false, c.finisher(v, j, as), false, nil
}

// finisher is the end of a job whose command ended, as the agent reported.
func (c *Controller) finisher(v *view, j *chub.Job, as jobproto.Status) finishWork {
	return func(ctx context.Context) (bool, bool, error) {
		changed, err := c.finish(ctx, v, j, true, as.ExitCode, as.EndedAt)
		return false, changed, err
	}
}

// finish keeps what the agent has of an ended job (fromAgent: it still
// has it), records the job's end (Canceled after a cancel, else by its
// recorded error and exit code) and has the agent forget it.
//
// The end time is when the agent says the command ended (the server may
// have been down then), within the job's start and now.
func (c *Controller) finish(ctx context.Context, v *view, j *chub.Job, fromAgent bool, exit *int, endedAt time.Time) (changed bool, err error) {
	art := j.Artifacts
	if fromAgent && !art.Kept && c.cfg.Artifacts != nil {
		art = c.keep(ctx, v, j)
	}
	ok, err := c.write(ctx, j, j.Status, func(n *chub.Job) {
		if n.ExitCode == nil {
			n.ExitCode = exit
		}
		status, e := chub.JobCompleted, n.Error
		switch {
		case n.Status == chub.JobCancelRequested:
			status, e = chub.JobCanceled, nil
		case e != nil || n.ExitCode == nil || *n.ExitCode != 0:
			status = chub.JobFailed
			if e == nil {
				e = &chub.ErrorDetail{Code: codeFailed, Message: "the command's exit code is not known"}
			}
		}
		end := c.now()
		if n.StartTime != nil && endedAt.After(*n.StartTime) && endedAt.Before(end) {
			end = endedAt.UTC()
		}
		n.Status, n.Error, n.Artifacts, n.EndTime = status, e, art, &end
		n.Message = endMessage(n)
	})
	if err != nil {
		return false, err
	}
	if !ok {
		return true, nil
	}
	v.setEnded()
	if fromAgent {
		c.cleanup(ctx, v, j)
	}
	return false, nil
}

// endMessage says how an ended job ended.
func endMessage(n *chub.Job) string {
	switch {
	case n.Status == chub.JobCanceled:
		if !strings.HasPrefix(strings.ToLower(n.Message), "canceled") {
			return "canceled"
		}
		return n.Message // the cancel's reason
	case n.Error != nil:
		return n.Error.Message
	case n.ExitCode != nil:
		return fmt.Sprintf("the command exited with code %d", *n.ExitCode)
	}
	return string(n.Status)
}

// keep copies an ended job's logs and outputs into the artifact store;
// what fails is logged and left out.
func (c *Controller) keep(ctx context.Context, v *view, j *chub.Job) chub.JobArtifacts {
	art := chub.JobArtifacts{Kept: true}
	for _, s := range jobproto.Streams {
		rc, err := c.agent.JobLogs(ctx, v.comp.ID, j.ID, s, 0, false)
		if err != nil {
			c.log.Warn("keep job log", "job", j.Name, "instance", v.name, "stream", s, "err", err)
			continue
		}
		n, trunc, err := c.cfg.Artifacts.PutLog(j.ID, s, rc)
		rc.Close()
		if err != nil {
			c.log.Warn("keep job log", "job", j.Name, "instance", v.name, "stream", s, "err", err)
			continue
		}
		art.Truncated = art.Truncated || trunc
		switch s {
		case jobproto.StreamLog:
			art.LogBytes = n
		case jobproto.StreamStdout:
			art.StdoutBytes = n
		case jobproto.StreamStderr:
			art.StderrBytes = n
		}
	}
	rc, err := c.agent.JobOutputs(ctx, v.comp.ID, j.ID)
	if err == nil {
		var n int64
		var trunc bool
		n, trunc, err = c.cfg.Artifacts.PutOutputs(j.ID, rc)
		rc.Close()
		art.OutputBytes, art.Truncated = n, art.Truncated || trunc
	}
	if err != nil {
		c.log.Warn("keep job outputs", "job", j.Name, "instance", v.name, "err", err)
	}
	return art
}

// cleanup ends what is left of a job in the instance and has the agent
// forget it.
func (c *Controller) cleanup(ctx context.Context, v *view, j *chub.Job) {
	if c.placer != nil {
		if err := c.placer.KillJob(ctx, v.comp.ID, j.ID); err != nil {
			c.log.Warn("remove job cgroup", "job", j.Name, "instance", v.name, "err", err)
		}
	}
	if err := c.agent.DeleteJob(ctx, v.comp.ID, j.ID); err != nil {
		c.log.Warn("forget job at the agent", "job", j.Name, "instance", v.name, "err", err)
	}
	v.forget(j.ID)
}

// forgetStrays has the agent forget jobs the store has ended or never
// had (a server stopped between recording a job's end and the agent's
// clean-up).
func (c *Controller) forgetStrays(ctx context.Context, v *view, active []*chub.Job) {
	act := make(map[string]bool, len(active))
	for _, j := range active {
		act[j.ID] = true
	}
	for id := range v.agentStates() {
		if act[id] {
			continue
		}
		j, err := c.cfg.Store.GetJobByID(ctx, id)
		switch {
		case chub.IsNotFound(err):
			j = &chub.Job{ID: id, Name: id}
		case err != nil:
			continue
		case !j.Status.Terminal():
			continue
		}
		c.log.Info("job ended: removing it from its instance", "job", j.Name, "instance", v.name)
		c.cleanup(ctx, v, j)
	}
}
