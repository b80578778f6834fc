package jobs

import (
	"context"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// watcher asks the agent of an instance with jobs running, often, whether
// one of them changed (mostly: ended), and wakes the instance's queue when
// one did: an ended job's slot goes to the next one at once, not at the
// next resync.
type watcher struct {
	cancel context.CancelFunc
	update chan watchState
}

// watchState is what the last pass saw: the agent's state of each busy
// job, and how often to ask.
type watchState struct {
	states map[string]string
	every  time.Duration
}

func (w *watcher) stop() { w.cancel() }

// watch starts or updates the watcher of an instance with busy jobs.
func (c *Controller) watch(computeID string, agent map[string]jobproto.Status, busy []*chub.Job) {
	st := watchState{states: make(map[string]string, len(busy)), every: pollOld}
	now := c.now()
	for _, j := range busy {
		st.states[j.ID] = agent[j.ID].State // "" when the agent does not have it (yet)
		if j.StartTime == nil || now.Sub(*j.StartTime) < pollAge || j.Status != chub.JobRunning {
			st.every = pollYoung
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runCtx == nil || c.runCtx.Err() != nil || c.agent == nil {
		return // not running (a test's single pass, or shutting down)
	}
	if w, ok := c.watchers[computeID]; ok {
		select {
		case <-w.update: // drop the stale state not yet taken
		default:
		}
		w.update <- st
		return
	}
	ctx, cancel := context.WithCancel(c.runCtx)
	w := &watcher{cancel: cancel, update: make(chan watchState, 1)}
	c.watchers[computeID] = w
	go c.poll(ctx, computeID, w, st)
}

// unwatch stops the watcher of an instance without busy jobs.
func (c *Controller) unwatch(computeID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.watchers[computeID]; ok {
		w.stop()
		delete(c.watchers, computeID)
	}
}

func (c *Controller) poll(ctx context.Context, computeID string, w *watcher, st watchState) {
	t := time.NewTimer(st.every)
	defer t.Stop()
	var woke time.Time // when it last woke the queue (zero: since the last pass)
	for {
		select {
		case <-ctx.Done():
			return
		case st = <-w.update:
			woke = time.Time{}
			continue
		case <-t.C:
		}
		// After a wake, wait for the pass's state (or a while, should the
		// pass have failed).
		if woke.IsZero() || time.Since(woke) > time.Second {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			list, err := c.agent.ListJobs(cctx, computeID)
			cancel()
			if err == nil && changed(st.states, list) {
				// Once per pass: the pass sends the new state.
				woke = time.Now()
				c.Wake(computeID)
			}
		}
		t.Reset(st.every)
	}
}

// changed reports whether a busy job's state in the agent differs from
// what the last pass saw.
func changed(seen map[string]string, list []jobproto.Status) bool {
	now := make(map[string]string, len(list))
	for _, s := range list {
		now[s.ID] = s.State
	}
	for id, state := range seen {
		if now[id] != state {
			return true
		}
	}
	return false
}
