package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/computehub/chub/streamproto"
)

// Terminal sessions: a login shell of the instance's user on a PTY that
// outlives its websocket. The agent keeps each shell with its recent
// output; a client attaches (new session) or re-attaches (session=ID) and
// gets the output replayed. A session nobody is attached to for
// Config.TerminalKeep is hung up. See package streamproto for the frames.

// DefaultTerminalKeep is how long a detached terminal session waits for a
// client to re-attach before its shell is hung up.
const DefaultTerminalKeep = 5 * time.Minute

// terminalRing is how much recent output a session keeps for replay.
const terminalRing = 64 << 10

// clientQueue is how many output messages may wait for a slow client
// before it is dropped (it may re-attach and get the replay).
const clientQueue = 1024

// terminals holds the agent's terminal sessions.
type terminals struct {
	mu       sync.Mutex
	sessions map[string]*termSession // guarded by mu
}

func (t *terminals) get(id string) *termSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sessions[id]
}

func (t *terminals) put(s *termSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessions == nil {
		t.sessions = map[string]*termSession{}
	}
	t.sessions[s.id] = s
}

func (t *terminals) remove(s *termSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessions[s.id] == s {
		delete(t.sessions, s.id)
	}
}

func (t *terminals) list() []*termSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*termSession, 0, len(t.sessions))
	for _, s := range t.sessions {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

// termSession is one shell on a PTY.
type termSession struct {
	id      string
	pid     int
	user    string
	created time.Time
	master  *os.File // non-blocking, so closing it ends a pending read

	ended chan struct{} // closed once the shell has exited and its output is in
	onEnd func()        // removes the session from the agent

	mu      sync.Mutex           // guards the fields below
	ring    []byte               // the last terminalRing bytes of output
	total   int64                // bytes of output so far; ring ends there
	clients map[*termClient]bool // attached clients
	exited  bool                 // the shell has exited and all output is in ring
	code    int                  // its exit code, once exited
	idle    *time.Timer          // runs while nobody is attached
	since   time.Time            // when the last client left (zero while attached)
	size    streamproto.Size     // the last size set
	hupped  bool                 // the keep time ran out and the shell was hung up
}

// termClient is one attached websocket.
type termClient struct {
	out    chan []byte // frames to send; closed when the client is let go
	closed bool        // out is closed; guarded by the session's mu
}

// sessionInfo is a session as GET /v1/terminals lists it.
type sessionInfo struct {
	ID       string     `json:"id"`
	PID      int        `json:"pid"`
	User     string     `json:"user"`
	Created  time.Time  `json:"created"`
	Attached int        `json:"attached"`
	Detached *time.Time `json:"detachedSince,omitempty"`
	Exited   bool       `json:"exited"`
	ExitCode *int       `json:"exitCode,omitempty"`
}

func (s *termSession) info() sessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := sessionInfo{ID: s.id, PID: s.pid, User: s.user, Created: s.created, Attached: len(s.clients), Exited: s.exited}
	if !s.since.IsZero() {
		t := s.since
		in.Detached = &t
	}
	if s.exited {
		c := s.code
		in.ExitCode = &c
	}
	return in
}

// serveTerminals answers GET /v1/terminals: the sessions, as JSON.
func (a *Agent) serveTerminals(w http.ResponseWriter, r *http.Request) {
	out := []sessionInfo{}
	for _, s := range a.terms.list() {
		out = append(out, s.info())
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// serveTerminal answers GET /v1/terminals/{id}: one session, or 404.
func (a *Agent) serveTerminal(w http.ResponseWriter, r *http.Request) {
	s := a.terms.get(r.PathValue("id"))
	if s == nil {
		http.Error(w, "no terminal session "+r.PathValue("id"), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.info())
}

// serveTerminalAttach answers GET /v1/terminals/attach?session=ID&offset=N&cols=C&rows=R
// (websocket): a new session when session is absent, else a re-attach
// that replays the output after offset N (all it kept without offset).
func (a *Agent) serveTerminalAttach(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := parseSize(q.Get("cols"), q.Get("rows"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	offset := int64(-1)
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			http.Error(w, "offset must be a byte count", http.StatusBadRequest)
			return
		}
	}
	var s *termSession
	if id := q.Get("session"); id != "" {
		if s = a.terms.get(id); s == nil {
			http.Error(w, "no terminal session "+id+" (it ended, or its keep time ran out)", http.StatusNotFound)
			return
		}
	} else {
		s, err = a.startTerminal(size)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	a.attach(r.Context(), s, conn, size, offset)
}

func parseSize(cols, rows string) (streamproto.Size, error) {
	if cols == "" && rows == "" {
		return streamproto.Size{}, nil
	}
	c, err1 := strconv.ParseUint(cols, 10, 16)
	r, err2 := strconv.ParseUint(rows, 10, 16)
	if err1 != nil || err2 != nil || c == 0 || r == 0 {
		return streamproto.Size{}, fmt.Errorf("cols and rows must be 1-65535, got %q and %q", cols, rows)
	}
	return streamproto.Size{Cols: uint16(c), Rows: uint16(r)}, nil
}

// startTerminal starts a login shell of the instance's user on a new PTY.
func (a *Agent) startTerminal(size streamproto.Size) (*termSession, error) {
	acct, err := lookupAccount(a.etc("passwd"), a.etc("group"), a.cfg.User)
	if err != nil {
		return nil, err
	}
	m, sl, err := openPTY()
	if err != nil {
		return nil, err
	}
	defer sl.Close()
	master, err := nonBlocking(m)
	if err != nil {
		sl.Close()
		return nil, err
	}
	if size.Cols == 0 {
		size = streamproto.Size{Cols: 80, Rows: 24}
	}
	ptySize(master, size.Cols, size.Rows)
	dir := acct.Home
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = "/"
	}
	env := commandEnv(acct, streamproto.ExecRequest{TTY: true})
	argv := []string{acct.Shell, "-l"}
	attr := &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if acct.UID != 0 || acct.GID != 0 {
		attr.Credential = &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups}
	}
	var pid int
	exited, err := a.reaper.start(func() (int, error) {
		p, err := os.StartProcess(acct.Shell, argv, &os.ProcAttr{Dir: dir, Env: env, Files: []*os.File{sl, sl, sl}, Sys: attr})
		if err != nil {
			return 0, err
		}
		pid = p.Pid
		p.Release()
		return pid, nil
	})
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("start %s: %w", acct.Shell, err)
	}
	id, err := newSessionID()
	if err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
		master.Close()
		return nil, err
	}
	s := &termSession{
		id: id, pid: pid, user: acct.Name, created: time.Now().UTC(), master: master,
		clients: map[*termClient]bool{}, size: size, ended: make(chan struct{}),
	}
	s.onEnd = func() { a.terms.remove(s) }
	a.terms.put(s)
	// Nobody is attached yet: the keep time runs until someone is.
	s.mu.Lock()
	s.detachedLocked(a.terminalKeep())
	s.mu.Unlock()
	pumped := make(chan struct{})
	go s.pump(pumped)
	go s.wait(exited, pumped, a.terminalKeep())
	a.log.Debug("terminal started", "session", id, "pid", pid, "user", acct.Name)
	return s, nil
}

func (a *Agent) terminalKeep() time.Duration {
	if a.cfg.TerminalKeep > 0 {
		return a.cfg.TerminalKeep
	}
	return DefaultTerminalKeep
}

// nonBlocking returns f's descriptor as a pollable file (so Close
// interrupts a Read) and closes f.
func nonBlocking(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("dup pty: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pty non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), "ptmx"), nil
}

func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// pump copies the shell's output to the ring and every attached client
// until the PTY ends, then closes done.
func (s *termSession) pump(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, streamproto.MaxPayload)
	for {
		n, err := s.master.Read(buf)
		if n > 0 {
			s.output(buf[:n])
		}
		if err != nil {
			return // EIO once the shell and its children closed the PTY, or closed
		}
	}
}

// output records p and queues it for every attached client.
func (s *termSession) output(p []byte) {
	frame := streamproto.EncodeFrame(streamproto.Stdout, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total += int64(len(p))
	s.ring = append(s.ring, p...)
	if len(s.ring) > terminalRing {
		s.ring = append(s.ring[:0], s.ring[len(s.ring)-terminalRing:]...)
	}
	for c := range s.clients {
		select {
		case c.out <- frame:
		default: // too slow: let it go; it may re-attach
			s.dropLocked(c)
		}
	}
}

// wait ends the session once the shell exits: the remaining output is
// sent, then the exit code, to every attached client. A session that ends
// while nobody is attached keeps its output and exit code for the keep
// time, so a client that re-attaches learns how it ended.
func (s *termSession) wait(exited <-chan syscall.WaitStatus, pumped <-chan struct{}, keep time.Duration) {
	ws := <-exited
	select {
	case <-pumped:
	case <-time.After(drainGrace): // a background process holds the PTY open
	}
	s.master.Close()
	<-pumped
	exit := streamproto.EncodeControl(streamproto.ControlMsg{Type: streamproto.TypeExit, Code: exitCode(ws)})
	s.mu.Lock()
	s.exited, s.code = true, exitCode(ws)
	attached := len(s.clients) > 0
	for c := range s.clients {
		select {
		case c.out <- exit:
		default:
		}
		s.dropLocked(c)
	}
	if s.idle != nil {
		s.idle.Stop()
	}
	if attached || s.hupped {
		s.onEnd()
	} else {
		s.idle = time.AfterFunc(keep, s.onEnd)
	}
	close(s.ended)
	s.mu.Unlock()
}

// dropLocked lets client c go: its writer sends what is queued and closes.
func (s *termSession) dropLocked(c *termClient) {
	if !c.closed {
		c.closed = true
		close(c.out)
	}
	delete(s.clients, c)
}

// detachedLocked starts the keep time once nobody is attached.
func (s *termSession) detachedLocked(keep time.Duration) {
	if len(s.clients) > 0 || s.exited {
		return
	}
	s.since = time.Now().UTC()
	if s.idle != nil {
		s.idle.Stop()
	}
	s.idle = time.AfterFunc(keep, s.hangup)
}

// hangup ends a session nobody came back to: SIGHUP, then SIGKILL.
func (s *termSession) hangup() {
	s.mu.Lock()
	if len(s.clients) > 0 || s.exited {
		s.mu.Unlock()
		return
	}
	s.hupped = true
	s.mu.Unlock()
	syscall.Kill(-s.pid, syscall.SIGHUP)
	select {
	case <-s.ended:
	case <-time.After(hangupGrace):
		syscall.Kill(-s.pid, syscall.SIGKILL)
	}
}

// attach relays conn to session s until the client leaves or the shell exits.
// A client that has the output up to offset (>= 0) gets only what follows,
// if the ring still holds it; otherwise, the whole ring.
func (a *Agent) attach(ctx context.Context, s *termSession, conn *websocket.Conn, size streamproto.Size, offset int64) {
	c := &termClient{out: make(chan []byte, clientQueue)}
	s.mu.Lock()
	replay := s.ring
	if start := s.total - int64(len(s.ring)); offset >= start && offset <= s.total {
		replay = s.ring[offset-start:]
	}
	c.out <- streamproto.EncodeControl(streamproto.ControlMsg{Type: streamproto.TypeSession, ID: s.id, Offset: s.total - int64(len(replay))})
	for rest := replay; len(rest) > 0; {
		k := min(len(rest), streamproto.MaxPayload)
		// The ring holds at most terminalRing bytes: a few messages,
		// far fewer than clientQueue.
		c.out <- streamproto.EncodeFrame(streamproto.Stdout, rest[:k])
		rest = rest[k:]
	}
	if s.exited {
		c.out <- streamproto.EncodeControl(streamproto.ControlMsg{Type: streamproto.TypeExit, Code: s.code})
		c.closed = true
		close(c.out)
		if s.idle != nil {
			s.idle.Stop()
		}
		s.onEnd() // its end has been told
	} else {
		s.clients[c] = true
		s.since = time.Time{}
		if s.idle != nil {
			s.idle.Stop()
			s.idle = nil
		}
		if size.Cols > 0 && size != s.size {
			s.size = size
			ptySize(s.master, size.Cols, size.Rows)
		}
	}
	s.mu.Unlock()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for frame := range c.out {
			if err := conn.Write(ctx, websocket.MessageBinary, frame); err != nil {
				conn.CloseNow()
				for range c.out { // wait for the close
				}
				return
			}
		}
		conn.Close(websocket.StatusNormalClosure, "")
	}()

read:
	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			break
		}
		if typ != websocket.MessageBinary {
			conn.Close(websocket.StatusUnsupportedData, "binary messages only")
			break
		}
		ch, payload, err := streamproto.ParseFrame(msg)
		if err != nil {
			conn.Close(websocket.StatusProtocolError, err.Error())
			break
		}
		switch ch {
		case streamproto.Stdin:
			if len(payload) == 0 {
				continue
			}
			a.touch("terminal")
			writeAll(s.master, payload)
		case streamproto.Control:
			m, err := streamproto.ParseControl(payload)
			if err != nil {
				conn.Close(websocket.StatusProtocolError, err.Error())
				break read
			}
			if m.Type == streamproto.TypeResize {
				s.mu.Lock()
				s.size = streamproto.Size{Cols: m.Cols, Rows: m.Rows}
				if !s.exited {
					ptySize(s.master, m.Cols, m.Rows)
				}
				s.mu.Unlock()
			}
		}
	}
	s.mu.Lock()
	if s.clients[c] {
		s.dropLocked(c)
		s.detachedLocked(a.terminalKeep())
	}
	s.mu.Unlock()
	<-writerDone
}

// writeAll writes p to the PTY, waiting while its input queue is full.
func writeAll(f *os.File, p []byte) {
	for len(p) > 0 {
		n, err := f.Write(p)
		p = p[n:]
		if err != nil {
			return
		}
	}
}

// ptySize sets the size of a pollable PTY without making it blocking
// (as File.Fd would).
func ptySize(f *os.File, cols, rows uint16) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	})
}
