package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/computehub/chub/apps"
	"github.com/computehub/chub/streamproto"
)

// Applications (Jupyter and friends, custom services) run as the instance's
// user, started on demand by POST /v1/apps/{name}/start and restarted with
// backoff whenever they exit, until the agent stops or the spec changes.

const (
	// appReadyTimeout bounds how long a start request waits for readiness.
	appReadyTimeout = 90 * time.Second
	// appBackoffMax caps the delay between restarts of a failing application.
	appBackoffMax = 30 * time.Second
	// appHealthyAfter is how long an application must run for its backoff to reset.
	appHealthyAfter = time.Minute
	// appLogTail is how much of an application's output is kept for errors.
	appLogTail = 4096
)

// appSupervisor keeps the applications running.
type appSupervisor struct {
	mu sync.Mutex // guards procs and closed
	// procs maps an application name to its supervised process.
	procs  map[string]*appProc
	closed bool
}

// appProc is one supervised application. Its fields are guarded by
// appSupervisor.mu.
type appProc struct {
	spec     apps.Spec
	user     string
	pid      int
	ready    bool
	starts   int    // how many times it was started
	exits    int    // how many times it exited
	lastErr  string // why it last exited, with its output's tail
	stopped  bool   // told to stop: do not restart
	changed  chan struct{}
	stopping chan struct{}
	done     chan struct{} // closed once its supervisor has returned
}

// notify wakes everyone waiting for a change of p; call with the lock held.
func (p *appProc) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// appStartRequest is the body of POST /v1/apps/{name}/start.
type appStartRequest struct {
	apps.Spec
	// User runs the application; default the agent's user.
	User string `json:"user,omitempty"`
}

// appStatus answers start requests and lists running applications.
type appStatus struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	PID      int    `json:"pid,omitempty"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	LastErr  string `json:"lastError,omitempty"`
}

// serveApps answers GET /v1/apps: the catalog applications whose program
// exists here, and the applications running.
func (a *Agent) serveApps(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Available []string    `json:"available"`
		Running   []appStatus `json:"running"`
	}{Available: apps.Available(func(prog string) bool {
		_, err := lookPath(prog, defaultPath, "/")
		return err == nil
	}), Running: []appStatus{}}
	if out.Available == nil {
		out.Available = []string{}
	}
	sup := &a.apps
	sup.mu.Lock()
	for _, p := range sup.procs {
		out.Running = append(out.Running, p.status())
	}
	sup.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (p *appProc) status() appStatus {
	restarts := p.starts - 1
	if restarts < 0 {
		restarts = 0
	}
	return appStatus{Name: p.spec.Name, Port: p.spec.Port, PID: p.pid, Ready: p.ready, Restarts: restarts, LastErr: p.lastErr}
}

// serveAppStart answers POST /v1/apps/{name}/start (body: appStartRequest):
// it starts the application unless it runs with the same spec, waits until
// it is ready and answers its appStatus. It counts as activity.
func (a *Agent) serveAppStart(w http.ResponseWriter, r *http.Request) {
	var req appStartRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad start request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req.Name = r.PathValue("name")
	if len(req.Command) == 0 || req.Port < 1 || req.Port > 65535 {
		http.Error(w, "a start request needs a command and a port", http.StatusBadRequest)
		return
	}
	if req.User == "" {
		req.User = a.cfg.User
	}
	a.touch("app")
	ctx, cancel := context.WithTimeout(r.Context(), appReadyTimeout)
	defer cancel()
	st, code, err := a.startApp(ctx, req)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	json.NewEncoder(w).Encode(st)
}

// serveAppStop answers POST /v1/apps/{name}/stop: the application stops
// and is not restarted (a removed custom service). Stopping one that does
// not run is not an error.
func (a *Agent) serveAppStop(w http.ResponseWriter, r *http.Request) {
	sup := &a.apps
	sup.mu.Lock()
	p := sup.procs[r.PathValue("name")]
	if p != nil {
		delete(sup.procs, r.PathValue("name"))
		if !p.stopped {
			p.stopped = true
			close(p.stopping)
		}
	}
	sup.mu.Unlock()
	if p != nil {
		select {
		case <-p.done:
		case <-r.Context().Done():
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}\n"))
}

// startApp makes sure the application runs with req's spec and waits for
// it to be ready. On failure it returns the HTTP status that fits.
func (a *Agent) startApp(ctx context.Context, req appStartRequest) (appStatus, int, error) {
	acct, err := lookupAccount(a.etc("passwd"), a.etc("group"), req.User)
	if err != nil {
		return appStatus{}, http.StatusBadRequest, err
	}
	argv := req.Expand(acct.Name, acct.Home)
	if _, err := lookPath(argv[0], defaultPath, acct.Home); err != nil {
		return appStatus{}, http.StatusNotFound, fmt.Errorf("application %s: %s: %v", req.Name, argv[0], err)
	}
	sup := &a.apps
	sup.mu.Lock()
	if sup.closed {
		sup.mu.Unlock()
		return appStatus{}, http.StatusServiceUnavailable, errors.New("the instance is stopping")
	}
	if sup.procs == nil {
		sup.procs = map[string]*appProc{}
	}
	p := sup.procs[req.Name]
	var prev *appProc
	if p != nil && (!reflect.DeepEqual(p.spec, req.Spec) || p.user != req.User) {
		// The spec changed (a custom service was redefined): replace it.
		if !p.stopped {
			p.stopped = true
			close(p.stopping)
		}
		prev, p = p, nil
	}
	if p == nil {
		p = &appProc{spec: req.Spec, user: req.User, changed: make(chan struct{}), stopping: make(chan struct{}), done: make(chan struct{})}
		sup.procs[req.Name] = p
		go a.superviseApp(p, prev, acct, argv)
	}
	exitsBefore := p.exits
	for {
		if p.ready {
			st := p.status()
			sup.mu.Unlock()
			return st, http.StatusOK, nil
		}
		if p.exits > exitsBefore || p.stopped {
			// It failed since this request came: say why, while it retries.
			msg := p.lastErr
			sup.mu.Unlock()
			return appStatus{}, http.StatusBadGateway, fmt.Errorf("application %s did not start: %s", req.Name, msg)
		}
		changed := p.changed
		sup.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return appStatus{}, http.StatusGatewayTimeout, fmt.Errorf("application %s was not ready within %v", req.Name, appReadyTimeout)
		}
		sup.mu.Lock()
	}
}

// superviseApp runs p until it is stopped, restarting it with backoff. It
// first waits for prev, the application it replaces, to be gone.
func (a *Agent) superviseApp(p, prev *appProc, acct account, argv []string) {
	defer close(p.done)
	if prev != nil {
		<-prev.done
	}
	sup := &a.apps
	backoff := time.Second
	for {
		started := time.Now()
		err := a.runApp(p, acct, argv)
		sup.mu.Lock()
		p.ready, p.pid = false, 0
		p.exits++
		p.lastErr = err.Error()
		p.notify()
		done := p.stopped || sup.closed
		sup.mu.Unlock()
		if done {
			return
		}
		a.log.Warn("application exited; restarting", "app", p.spec.Name, "err", err, "in", backoff)
		if time.Since(started) > appHealthyAfter {
			backoff = time.Second
		}
		select {
		case <-p.stopping:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, appBackoffMax)
	}
}

// runApp starts the application once, marks it ready when it answers and
// returns why it ended.
func (a *Agent) runApp(p *appProc, acct account, argv []string) error {
	env := commandEnv(acct, streamproto.ExecRequest{Env: p.spec.Env})
	prog, err := lookPath(argv[0], envValue(env, "PATH"), acct.Home)
	if err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	dir := acct.Home
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = "/"
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	if acct.UID != 0 || acct.GID != 0 {
		attr.Credential = &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups}
	}
	var pid int
	exited, err := a.reaper.start(func() (int, error) {
		proc, err := os.StartProcess(prog, argv, &os.ProcAttr{Dir: dir, Env: env, Files: []*os.File{null, outW, outW}, Sys: attr})
		if err != nil {
			return 0, err
		}
		pid = proc.Pid
		proc.Release()
		return pid, nil
	})
	outW.Close()
	null.Close()
	if err != nil {
		outR.Close()
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	sup := &a.apps
	sup.mu.Lock()
	p.pid = pid
	p.starts++
	sup.mu.Unlock()
	a.log.Info("application started", "app", p.spec.Name, "pid", pid, "user", acct.Name, "port", p.spec.Port)

	tail := &tailBuffer{max: appLogTail}
	logDone := make(chan struct{})
	go func() { io.Copy(tail, outR); outR.Close(); close(logDone) }()

	probeCtx, stopProbe := context.WithCancel(context.Background())
	defer stopProbe()
	go func() {
		if waitAppReady(probeCtx, p.spec) == nil {
			sup.mu.Lock()
			if p.pid == pid {
				p.ready = true
				p.notify()
			}
			sup.mu.Unlock()
		}
	}()

	var ws syscall.WaitStatus
	select {
	case ws = <-exited:
	case <-p.stopping:
		syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case ws = <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-pid, syscall.SIGKILL)
			ws = <-exited
		}
	}
	stopProbe()
	// Children of the application may keep its output open: do not wait long.
	select {
	case <-logDone:
	case <-time.After(drainGrace):
	}
	return fmt.Errorf("exit status %d: %s", exitCode(ws), tail.String())
}

// waitAppReady polls the application until it answers (HTTP below 500 on
// spec.ReadyPath, or a TCP connect when there is none) or ctx ends.
func waitAppReady(ctx context.Context, spec apps.Spec) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.Port))
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for {
		if spec.ReadyPath == "" {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		} else {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+spec.ReadyPath, nil)
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopApps stops supervising: applications are not restarted any more (the
// agent's stopAll ends their processes).
func (a *Agent) stopApps() {
	sup := &a.apps
	sup.mu.Lock()
	defer sup.mu.Unlock()
	sup.closed = true
	for _, p := range sup.procs {
		if !p.stopped {
			p.stopped = true
			close(p.stopping)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
