package jobs

import "sync"

// queue hands out instance ids to workers: an id queued many times is
// handed out once, and never to two workers at the same time.
type queue struct {
	mu      sync.Mutex // guards the fields below
	cond    *sync.Cond
	order   []string
	queued  map[string]bool
	running map[string]bool
	dirty   map[string]bool // woken while running: queue again when done
	closed  bool
}

func newQueue() *queue {
	q := &queue{queued: map[string]bool{}, running: map[string]bool{}, dirty: map[string]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) add(id string) {
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

// get blocks for the next id; ok is false once the queue is closed.
func (q *queue) get() (id string, ok bool) {
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

// done marks id finished, queueing it again if it was woken meanwhile.
func (q *queue) done(id string) {
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

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
