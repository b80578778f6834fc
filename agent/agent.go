// Package agent provides the in-instance agent: the instance's PID 1, which
// reaps orphans, stops every process on SIGTERM and runs commands for the
// server over a unix socket (see package streamproto).
package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub/streamproto"
)

// Config configures the agent.
type Config struct {
	// ListenFD, when set, is an inherited listening unix socket to serve
	// on (the local runtime binds the socket on the host, in a directory
	// the instance cannot reach, and passes it as fd 3); SocketPath is
	// then only its name in the log.
	ListenFD int
	// SocketPath is where the agent serves when ListenFD is not set;
	// default /run/chub/agent.sock.
	SocketPath string
	// User runs commands that name no user; default azureuser.
	User string
	// Logger receives the agent's log; default discards it.
	Logger *slog.Logger
	// StopGrace is how long processes have between SIGTERM and SIGKILL
	// when the agent stops; default 5s.
	StopGrace time.Duration
	// TerminalKeep is how long a terminal session nobody is attached to
	// waits for a client to re-attach; default DefaultTerminalKeep.
	TerminalKeep time.Duration
	// JobsRoot is where jobs live; default jobproto.Root.
	JobsRoot string
	// SupervisorPath is the chub binary run as a job's supervisor
	// (`agent job-supervise`); default /proc/self/exe.
	SupervisorPath string
	// JobKillGrace is how long a job's processes have between SIGTERM and
	// SIGKILL when it is canceled or timed out; default 5s.
	JobKillGrace time.Duration
}

// DefaultSocketPath is where an agent started without ListenFD listens.
const DefaultSocketPath = "/run/chub/agent.sock"

// Agent is a running agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	reaper *reaper
	act    activity
	terms  terminals
	apps   appSupervisor
	jobs   jobTable
	etcDir string // where passwd and group are read; /etc but in tests
}

func (a *Agent) etc(name string) string { return filepath.Join(a.etcDir, name) }

func newAgent(cfg Config) *Agent {
	if cfg.SocketPath == "" {
		if cfg.ListenFD > 0 {
			cfg.SocketPath = "fd " + strconv.Itoa(cfg.ListenFD)
		} else {
			cfg.SocketPath = DefaultSocketPath
		}
	}
	if cfg.User == "" {
		cfg.User = "azureuser"
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Agent{cfg: cfg, log: log, reaper: newReaper(), etcDir: "/etc"}
}

// Run serves until ctx is done or SIGTERM (or SIGINT) arrives, then stops
// every process it can see and returns.
func Run(ctx context.Context, cfg Config) error {
	return newAgent(cfg).run(ctx)
}

func (a *Agent) run(ctx context.Context) error {
	stopReaper := make(chan struct{})
	defer close(stopReaper)
	go a.reaper.run(stopReaper)
	a.loadJobs()
	go a.jobActivity(stopReaper)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ln, err := a.listen()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("agent serving", "socket", a.cfg.SocketPath, "pid", os.Getpid())
	trimTimer := time.AfterFunc(time.Second, trimMemory)
	defer trimTimer.Stop()

	select {
	case <-ctx.Done():
	case s := <-sigs:
		a.log.Info("agent stopping", "signal", s.String())
	case err := <-served:
		return fmt.Errorf("serve %s: %w", a.cfg.SocketPath, err)
	}
	srv.Close()
	a.stopAll()
	return nil
}

func (a *Agent) listen() (net.Listener, error) {
	if a.cfg.ListenFD > 0 {
		f := os.NewFile(uintptr(a.cfg.ListenFD), a.cfg.SocketPath)
		if f == nil {
			return nil, fmt.Errorf("agent socket: fd %d is not open", a.cfg.ListenFD)
		}
		// The listener gets its own close-on-exec copy: the commands
		// the agent runs inherit neither.
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("agent socket: the inherited fd %d: %w", a.cfg.ListenFD, err)
		}
		if _, ok := ln.(*net.UnixListener); !ok {
			ln.Close()
			return nil, fmt.Errorf("agent socket: the inherited fd %d is not a unix socket", a.cfg.ListenFD)
		}
		return ln, nil
	}
	dir := filepath.Dir(a.cfg.SocketPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent socket directory: %w", err)
	}
	os.Remove(a.cfg.SocketPath)
	ln, err := net.Listen("unix", a.cfg.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	// Only root may talk to the agent: it runs commands as anyone.
	if err := os.Chmod(a.cfg.SocketPath, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Handler serves the agent's API: GET /healthz, GET /v1/exec (websocket,
// streamproto), GET /v1/dial?port=N (websocket tunnel to a loopback TCP port),
// GET /v1/activity, jobs (see package jobproto), and terminals: GET /v1/terminals (list),
// GET /v1/terminals/{id} and GET /v1/terminals/attach?session=ID (websocket).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /v1/exec", a.serveExec)
	mux.HandleFunc("GET /v1/dial", a.serveDial)
	mux.HandleFunc("GET /v1/activity", a.serveActivity)
	mux.HandleFunc("GET /v1/terminals", a.serveTerminals)
	mux.HandleFunc("GET /v1/terminals/attach", a.serveTerminalAttach)
	mux.HandleFunc("GET /v1/terminals/{id}", a.serveTerminal)
	mux.HandleFunc("GET /v1/apps", a.serveApps)
	mux.HandleFunc("POST /v1/apps/{name}/start", a.serveAppStart)
	mux.HandleFunc("POST /v1/apps/{name}/stop", a.serveAppStop)
	a.registerJobs(mux)
	return mux
}

func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	s, err := streamproto.Accept(r.Context(), conn)
	if err != nil {
		conn.Close(websocket.StatusProtocolError, err.Error())
		return
	}
	// The session outlives nothing: a closed connection ends its context.
	a.execSession(r.Context(), s)
}

// stopAll sends SIGTERM to every process, waits up to StopGrace for them
// to exit and kills the rest. As PID 1 it reaches every process of the
// instance; elsewhere (tests) only the process groups it started.
func (a *Agent) stopAll() {
	a.stopApps()
	a.stopJobs()
	pid1 := os.Getpid() == 1
	signalAll := func(sig syscall.Signal) {
		if pid1 {
			syscall.Kill(-1, sig)
			return
		}
		for _, pid := range a.reaper.tracked() {
			syscall.Kill(-pid, sig)
		}
	}
	remaining := func() bool {
		if pid1 {
			return otherProcesses()
		}
		return len(a.reaper.tracked()) > 0
	}
	signalAll(syscall.SIGTERM)
	deadline := time.Now().Add(a.cfg.StopGrace)
	for remaining() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if remaining() {
		signalAll(syscall.SIGKILL)
		for i := 0; i < 100 && remaining(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// otherProcesses reports whether /proc lists a process other than this
// one that is not a zombie awaiting the reaper.
func otherProcesses() bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The state follows the last ')' of the command name.
		if i := lastIndex(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		return true
	}
	return false
}

func lastIndex(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}
