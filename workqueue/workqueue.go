// Package workqueue hands out keys (instance ids) to a pool of workers: a
// key added many times is handed out once, never to two workers at the
// same time, and a key added while a worker has it is handed out again
// when that worker is done. The reconciler and the job controller use it.
package workqueue

import "sync"

// Queue hands out keys to workers; the zero value is not usable (New).
type Queue struct {
	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond
	order   []string
	queued  map[string]bool
	running map[string]bool
	dirty   map[string]bool // woken while running: queue again when done
	closed  bool
}

// New returns an empty queue.
func New() *Queue {
	q := &Queue{queued: map[string]bool{}, running: map[string]bool{}, dirty: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues id unless it is queued already.
func (q *Queue) Add(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed || q.queued[id]:
	case q.running[id]:
		q.dirty[id] = true
	default:
		q.queued[id] = true
		q.order = append(q.order, id)
		q.cond.Signal()
	}
}

// Get blocks for the next id; ok is false once the queue is closed.
func (q *Queue) Get() (id string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	id, q.order = q.order[0], q.order[1:]
	delete(q.queued, id)
	q.running[id] = true
	return id, true
}

// Done marks id finished, queueing it again if it was added meanwhile.
func (q *Queue) Done(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.running, id)
	if q.dirty[id] && !q.closed {
		delete(q.dirty, id)
		q.queued[id] = true
		q.order = append(q.order, id)
		q.cond.Signal()
	}
}

// Close ends the queue: Get returns false from now on.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
