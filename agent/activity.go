package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// activity records when the instance was last used and by what.
type activity struct {
	mu   sync.Mutex // guards last and kind
	last time.Time
	kind string
}

// touch records activity of the given kind (terminal, ssh, app, dial, job, kernel).
func (a *Agent) touch(kind string) {
	a.act.mu.Lock()
	a.act.last, a.act.kind = time.Now().UTC(), kind
	a.act.mu.Unlock()
}

// activityReader reports activity whenever data is read through it.
type activityReader struct {
	r     io.Reader
	touch func()
}

func (r activityReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.touch()
	}
	return n, err
}

// serveActivity answers GET /v1/activity: {"lastActivity": time, "kind": ...}.
func (a *Agent) serveActivity(w http.ResponseWriter, r *http.Request) {
	a.act.mu.Lock()
	out := struct {
		LastActivity *time.Time `json:"lastActivity"`
		Kind         string     `json:"kind,omitempty"`
	}{Kind: a.act.kind}
	if !a.act.last.IsZero() {
		t := a.act.last
		out.LastActivity = &t
	}
	a.act.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
