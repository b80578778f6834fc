package agent

import (
	"encoding/json"
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
