package agent

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// reaper waits for every child of the process, as PID 1 must, and hands
// the exit status of the children it was told about to whoever started
// them.
type reaper struct {
	mu sync.Mutex
	// waiters maps the pid of a tracked child to where its status goes;
	// guarded by mu.
	waiters map[int]chan syscall.WaitStatus
}

func newReaper() *reaper {
	return &reaper{waiters: make(map[int]chan syscall.WaitStatus)}
}

// start runs fn, which starts a child and returns its pid, under the
// reaper's lock, so the child cannot be reaped before it is tracked. The
// returned channel receives the child's status once it has exited.
func (r *reaper) start(fn func() (int, error)) (<-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fn()
	if err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = ch
	return ch, nil
}

// tracked returns the pids of the tracked children still running.
func (r *reaper) tracked() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	pids := make([]int, 0, len(r.waiters))
	for pid := range r.waiters {
		pids = append(pids, pid)
	}
	return pids
}

// reapAll collects every child that has exited, without blocking. It
// reports whether the process has no children left.
func (r *reaper) reapAll() (none bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: no children at all
			return true
		}
		if pid <= 0 {
			return false
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		}
	}
}

// run reaps children whenever SIGCHLD arrives, until stop is closed.
func (r *reaper) run(stop <-chan struct{}) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	r.reapAll()
	for {
		select {
		case <-stop:
			return
		case <-sig:
			r.reapAll()
		}
	}
}
