package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub/streamproto"
)

// termAgent runs an agent whose terminals are root's login shell and whose
// keep time is keep; it returns an HTTP client of its socket.
func termAgent(t *testing.T, keep time.Duration) (*Agent, *http.Client) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the agent runs shells as other users: needs root")
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	a := newAgent(Config{SocketPath: sock, User: "root", StopGrace: time.Second, TerminalKeep: keep})
	// root with a home of its own: the host's root profile is not the test's.
	a.etcDir = t.TempDir()
	home := t.TempDir()
	os.WriteFile(filepath.Join(a.etcDir, "passwd"), []byte("root:x:0:0:root:"+home+":/bin/bash\n"), 0o644)
	os.WriteFile(filepath.Join(a.etcDir, "group"), []byte("root:x:0:\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	waitUntil(t, 5*time.Second, "agent healthy", func() bool {
		resp, err := hc.Get("http://agent/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return a, hc
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// screen collects a terminal's output in the background.
type screen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	err  error // why reading stopped
	done chan struct{}
}

func watch(term *streamproto.Terminal) *screen {
	s := &screen{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		b := make([]byte, 4096)
		for {
			n, err := term.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			if err != nil {
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal output never showed %q; got:\n%s", want, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openTerm(t *testing.T, hc *http.Client, query string) (*streamproto.Terminal, *screen) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws://agent/v1/terminals/attach?"+query, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("attach %q: %v", query, err)
	}
	term, err := streamproto.AttachTerminal(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !streamproto.ValidSessionID(term.SessionID) {
		t.Fatalf("session id %q", term.SessionID)
	}
	return term, watch(term)
}

func sessions(t *testing.T, hc *http.Client) []sessionInfo {
	t.Helper()
	resp, err := hc.Get("http://agent/v1/terminals")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []sessionInfo
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTerminalSession(t *testing.T) {
	a, hc := termAgent(t, time.Minute)
	term, scr := openTerm(t, hc, "cols=91&rows=33")
	term.Write([]byte("stty size; MARK=kept; echo ready-$((40+2))\n"))
	scr.expect(t, "33 91")
	scr.expect(t, "ready-42")
	a.act.mu.Lock()
	kind, last := a.act.kind, a.act.last
	a.act.mu.Unlock()
	if kind != "terminal" || time.Since(last) > 10*time.Second {
		t.Errorf("activity after terminal input: %q at %v; want terminal, now", kind, last)
	}
	term.Resize(120, 50)
	term.Write([]byte("stty size\n"))
	scr.expect(t, "50 120")

	// Detach and re-attach: the same shell, its recent output replayed.
	term.Close()
	<-scr.done
	if !errors.Is(scr.err, streamproto.ErrDetached) {
		t.Fatalf("read after close: %v; want ErrDetached", scr.err)
	}
	waitUntil(t, 5*time.Second, "session detached", func() bool {
		ss := sessions(t, hc)
		return len(ss) == 1 && ss[0].Attached == 0 && ss[0].Detached != nil
	})
	// With the offset it had, a client gets only what it missed.
	off := term.Offset()
	resumed, scr1 := openTerm(t, hc, "session="+term.SessionID+"&offset="+strconv.FormatInt(off, 10))
	resumed.Write([]byte("echo fresh-$((1+1))\n"))
	scr1.expect(t, "fresh-2\r\n")
	if out := scr1.String(); strings.Contains(out, "ready-42") {
		t.Errorf("resuming at offset %d replayed earlier output:\n%s", off, out)
	}
	resumed.Close()
	<-scr1.done
	waitUntil(t, 5*time.Second, "session detached", func() bool { return sessions(t, hc)[0].Attached == 0 })

	again, scr2 := openTerm(t, hc, "session="+term.SessionID)
	if again.SessionID != term.SessionID {
		t.Fatalf("re-attached to %s; want %s", again.SessionID, term.SessionID)
	}
	scr2.expect(t, "ready-42")
	again.Write([]byte("echo mark=$MARK\n"))
	scr2.expect(t, "mark=kept")
	again.Write([]byte("exit 5\n"))
	<-scr2.done
	if code, ok := again.ExitCode(); scr2.err != io.EOF || !ok || code != 5 {
		t.Fatalf("after exit 5: err %v, code %d (exited %v); want EOF and 5", scr2.err, code, ok)
	}
	waitUntil(t, 5*time.Second, "session gone", func() bool { return len(sessions(t, hc)) == 0 })
	resp, err := hc.Get("http://agent/v1/terminals/attach?session=" + term.SessionID)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("attach to an ended session: %v %v; want 404", resp.Status, err)
	}
	resp.Body.Close()
}

// TestTerminalKeep: a detached session is hung up after the keep time.
func TestTerminalKeep(t *testing.T) {
	_, hc := termAgent(t, 500*time.Millisecond)
	term, scr := openTerm(t, hc, "")
	term.Write([]byte("echo up\n"))
	scr.expect(t, "up")
	term.Close()
	waitUntil(t, 10*time.Second, "the detached session to end", func() bool { return len(sessions(t, hc)) == 0 })

}

// TestTerminalExitWhileDetached: a session whose shell exited while
// detached tells the next client its output and exit code.
func TestTerminalExitWhileDetached(t *testing.T) {
	_, hc := termAgent(t, 10*time.Second)
	term, scr := openTerm(t, hc, "")
	term.Write([]byte("echo started-$((1+1)); sleep 0.3; exit 7\n"))
	scr.expect(t, "started-2\r\n")
	term.Close()
	waitUntil(t, 5*time.Second, "the shell to exit", func() bool {
		ss := sessions(t, hc)
		return len(ss) == 1 && ss[0].Exited
	})
	again, scr2 := openTerm(t, hc, "session="+term.SessionID)
	<-scr2.done
	if code, ok := again.ExitCode(); !ok || code != 7 || !strings.Contains(scr2.String(), "started-2") {
		t.Fatalf("re-attach after the exit: code %d (exited %v), output %q; want 7 and the replay", code, ok, scr2.String())
	}
}

// TestTerminalFlood: a flood of output reaches the client whole and in order.
func TestTerminalFlood(t *testing.T) {
	_, hc := termAgent(t, time.Minute)
	term, scr := openTerm(t, hc, "")
	term.Write([]byte("stty -echo; echo BEGIN; seq 1 50000; echo END\n"))
	scr.expect(t, "\r\nEND\r\n")
	out := scr.String()
	out = out[strings.LastIndex(out, "BEGIN\r\n")+len("BEGIN\r\n") : strings.LastIndex(out, "END\r\n")]
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	if len(lines) != 50000 {
		t.Fatalf("got %d lines; want 50000", len(lines))
	}
	for i, l := range lines {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q; want %d", i, l, i+1)
		}
	}
	term.Write([]byte("exit\n"))
	<-scr.done
}

// BenchmarkTerminalEcho measures a keystroke's echo round trip straight to
// the agent (no server): one byte to `cat` on the PTY, until the PTY's
// echo of it comes back. Compare with the e2e figure through the server.
func BenchmarkTerminalEcho(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("the agent runs shells as other users: needs root")
	}
	sock := filepath.Join(b.TempDir(), "a.sock")
	a := newAgent(Config{SocketPath: sock, User: "root", StopGrace: time.Second})
	a.etcDir = b.TempDir()
	os.WriteFile(filepath.Join(a.etcDir, "passwd"), []byte("root:x:0:0:root:"+b.TempDir()+":/bin/sh\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() { cancel(); <-done }()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	var conn *websocket.Conn
	for i := 0; ; i++ {
		var err error
		conn, _, err = websocket.Dial(ctx, "ws://agent/v1/terminals/attach", &websocket.DialOptions{HTTPClient: hc})
		if err == nil {
			break
		}
		if i > 500 {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	term, err := streamproto.AttachTerminal(ctx, conn)
	if err != nil {
		b.Fatal(err)
	}
	defer term.Close()
	buf := make([]byte, 64<<10)
	var seen []byte
	term.Write([]byte("exec cat >/dev/null\n"))
	for !bytes.Contains(seen, []byte("cat >/dev/null\r\n")) {
		n, err := term.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		seen = append(seen, buf[:n]...)
	}
	time.Sleep(100 * time.Millisecond) // cat reads
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := 'a' + byte(i%26)
		term.Write([]byte{k})
		for {
			n, err := term.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			if bytes.IndexByte(buf[:n], k) >= 0 {
				break
			}
		}
	}
}
