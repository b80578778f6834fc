package e2e

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
	"github.com/computehub/chub/streamproto"
)

// screen collects what a terminal prints, in the background.
type screen struct {
	mu      sync.Mutex // guards buf and err
	buf     strings.Builder
	err     error // why reading stopped
	changed chan struct{}
	done    chan struct{}
}

func watchScreen(r io.Reader) *screen {
	s := &screen{changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		b := make([]byte, 32<<10)
		for {
			n, err := r.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			if err != nil {
				s.err = err
			}
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}

// waitFrom waits until the output from offset on matches re and returns the match.
func (s *screen) waitFrom(t *testing.T, from int, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		out := s.String()
		if m := re.FindStringSubmatch(out[min(from, len(out)):]); m != nil {
			return m
		}
		select {
		case <-s.changed:
		case <-s.done:
			if m := re.FindStringSubmatch(s.String()[from:]); m != nil {
				return m
			}
			t.Fatalf("terminal ended (%v) before showing %v; got:\n%s", s.err, re, tail(s.String(), 2000))
		case <-deadline:
			t.Fatalf("terminal never showed %v within %v; got:\n%s", re, timeout, tail(s.String(), 2000))
		}
	}
}

func (s *screen) expect(t *testing.T, from int, literal string) {
	t.Helper()
	s.waitFrom(t, from, regexp.MustCompile(regexp.QuoteMeta(literal)), 20*time.Second)
}

func lastActivity(t *testing.T, c *client.Client, name string) *time.Time {
	t.Helper()
	ci, err := c.GetCompute(ctx(t), "", name)
	if err != nil {
		t.Fatal(err)
	}
	return ci.Properties.Properties.LastActivityTime
}

// TestTerminal opens a terminal through the server as the instance's user,
// resizes it, drops and re-attaches it, exits it with a code, sees the
// activity it makes in the API, keeps other users out, measures keystroke
// echo and drives the CLI in a real pty.
func TestTerminal(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	create(t, admin, "term1", "Standard_B1s")

	// exec is activity too: it shows in the API at the next resync.
	mustRun(t, admin, "term1", "true")
	var prev *time.Time
	waitFor(t, 20*time.Second, "lastActivityTime after an exec", func() bool {
		prev = lastActivity(t, admin, "term1")
		return prev != nil
	})
	term, err := admin.OpenTerminal(ctx(t), "", "term1", client.TerminalOptions{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	scr := watchScreen(term)
	typed := time.Now()
	term.Write([]byte("echo hello-term; whoami; pwd\n"))
	// (bash turns bracketed paste off before each command's output: no
	// line start to anchor on.)
	scr.expect(t, 0, "hello-term\r\nazureuser\r\n/home/azureuser\r\n")
	if out := scr.String(); strings.Count(out, "hello-term") < 2 {
		t.Errorf("the typed command was not echoed:\n%s", out)
	}

	// Resize.
	term.Resize(120, 40)
	off := scr.Len()
	term.Write([]byte("stty size\n"))
	scr.expect(t, off, "40 120\r\n")

	// State in the shell, then a dropped connection and a re-attach.
	off = scr.Len()
	term.Write([]byte("TERM_MARK=still-here-$((6*7)); echo pid=$$.\n"))
	pid := scr.waitFrom(t, off, regexp.MustCompile(`pid=(\d+)\.\r\n`), 20*time.Second)[1]
	term.Close()
	<-scr.done
	if !errors.Is(scr.err, streamproto.ErrDetached) {
		t.Fatalf("after close: %v; want ErrDetached", scr.err)
	}
	again, err := admin.OpenTerminal(ctx(t), "", "term1", client.TerminalOptions{Session: term.SessionID})
	if err != nil {
		t.Fatalf("re-attach: %v", err)
	}
	if again.SessionID != term.SessionID {
		t.Fatalf("re-attached to session %s; want %s", again.SessionID, term.SessionID)
	}
	scr2 := watchScreen(again)
	scr2.expect(t, 0, "hello-term\r\nazureuser\r\n") // replayed
	scr2.expect(t, 0, "pid="+pid+".")
	off = scr2.Len()
	again.Write([]byte("echo mark=$TERM_MARK pid=$$.\n"))
	scr2.expect(t, off, "mark=still-here-42 pid="+pid+".\r\n")

	// Terminal input is activity, and the API shows it.
	waitFor(t, 20*time.Second, "lastActivityTime to advance after terminal input", func() bool {
		la := lastActivity(t, admin, "term1")
		return la != nil && la.After(*prev) && la.After(typed.Add(-time.Second))
	})

	// Keystroke echo round trip through the server: `cat` on the terminal,
	// so the PTY's own echo answers each byte.
	off = scr2.Len()
	again.Write([]byte("cat >/dev/null\n"))
	scr2.expect(t, off, "cat >/dev/null\r\n")
	time.Sleep(200 * time.Millisecond) // cat is reading
	const samples = 300
	rtts := make([]time.Duration, 0, samples)
	for i := range samples {
		k := "abcdefghijklmnopqrstuvwxyz"[i%26 : i%26+1]
		off = scr2.Len()
		start := time.Now()
		again.Write([]byte(k))
		scr2.waitFrom(t, off, regexp.MustCompile(k), 10*time.Second)
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	t.Logf("terminal keystroke echo round trip through the server (client -> server -> agent -> pty -> back), %d samples: median %v, p95 %v, p99 %v, max %v",
		samples, rtts[samples/2], rtts[samples*95/100], rtts[samples*99/100], rtts[samples-1])
	again.Write([]byte("\n\x04"))
	off = scr2.Len()
	again.Write([]byte("echo back-$((1+1))\n"))
	scr2.expect(t, off, "back-2\r\n")

	// exit 5 ends the session with 5; the session is then gone.
	again.Write([]byte("exit 5\n"))
	<-scr2.done
	if code, exited := again.ExitCode(); scr2.err != io.EOF || !exited || code != 5 {
		t.Fatalf("exit 5: read error %v, code %d (exited %v); want EOF and 5", scr2.err, code, exited)
	}
	_, err = admin.OpenTerminal(ctx(t), "", "term1", client.TerminalOptions{Session: term.SessionID})
	if ce, ok := err.(*client.Error); !ok || ce.StatusCode != 404 {
		t.Fatalf("re-attach to an ended session: %v; want 404", err)
	}
	_, err = admin.OpenTerminal(ctx(t), "", "term1", client.TerminalOptions{Session: "not-an-id"})
	if ce, ok := err.(*client.Error); !ok || ce.StatusCode != 400 {
		t.Fatalf("a malformed session id: %v; want 400", err)
	}

	// Only the instance's own user: another user gets 403.
	if _, err := admin.CreateUser(ctx(t), "bob", "Bob B.", "", false); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx(t), "bob", "test", 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.clientWithToken(tok.Token).OpenTerminal(ctx(t), "", "term1", client.TerminalOptions{})
	if ce, ok := err.(*client.Error); !ok || ce.StatusCode != 403 || ce.Code != "AuthorizationFailed" {
		t.Fatalf("bob opening the admin's terminal: %v; want 403 AuthorizationFailed", err)
	}

	// The CLI in a real terminal: raw mode, size and resizes, exit code.
	s.cliTerminal(t, "term1")
	// The short form, with input from a pipe.
	if out, stderr, code := s.chub(t, "echo piped-$((2+3))\nexit 4\n", "terminal", "term1"); code != 4 || !strings.Contains(out, "piped-5") {
		t.Fatalf("chub terminal with piped input: exit %d; want 4; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}

	// A stopped instance has no terminal.
	act(t, admin, "term1", chub.OpStop)
	_, err = admin.OpenTerminal(ctx(t), "", "term1", client.TerminalOptions{})
	if ce, ok := err.(*client.Error); !ok || ce.StatusCode != 409 {
		t.Fatalf("terminal of a stopped instance: %v; want 409", err)
	}
}

// cliTerminal runs `chub computetarget computeinstance terminal -n NAME` on
// a pty of its own, checks the size and a resize, that it re-attaches
// across a server restart, and that `exit 3` makes the CLI exit with 3.
func (s *server) cliTerminal(t *testing.T, name string) {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: 90, Row: 30})
	cmd := exec.Command(chubBin, "computetarget", "computeinstance", "terminal", "-n", name)
	cmd.Env = append(os.Environ(), "CHUB_SERVER=https://"+s.addr, "CHUB_TOKEN="+s.token(),
		"CHUB_CA_CERT="+filepath.Join(s.dataDir, "tls", "ca.crt"), "CHUB_CONFIG="+filepath.Join(t.TempDir(), "none.json"), "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	scr := watchScreen(master)
	master.Write([]byte("stty size\r"))
	scr.expect(t, 0, "30 90\r\n")
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: 100, Row: 40})
	// SIGWINCH reaches the CLI asynchronously: ask until the size follows.
	deadline := time.Now().Add(20 * time.Second)
	for off := 0; !strings.Contains(scr.String()[off:], "40 100\r\n"); {
		if time.Now().After(deadline) {
			t.Fatalf("the resize never reached the shell:\n%s", tail(scr.String(), 2000))
		}
		off = scr.Len()
		master.Write([]byte("stty size\r"))
		time.Sleep(300 * time.Millisecond)
	}
	// A server restart drops the connection: the CLI re-attaches to the
	// same shell by itself, without replaying what it already showed.
	off := scr.Len()
	master.Write([]byte("CLI_MARK=same-$((3*3)); echo set-$((1+1))\r"))
	scr.expect(t, off, "set-2\r\n")
	s.restart()
	scr.expect(t, off, "[chub: re-attached]")
	off = scr.Len()
	master.Write([]byte("echo mark=$CLI_MARK\r"))
	scr.expect(t, off, "mark=same-9\r\n")
	if n := strings.Count(scr.String(), "set-2\r\n"); n != 1 {
		t.Errorf("output shown %d times after the re-attach; want once:\n%s", n, tail(scr.String(), 2000))
	}
	master.Write([]byte("exit 3\r"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Fatalf("the CLI after exit 3: %v; want exit status 3; screen:\n%s", err, tail(scr.String(), 2000))
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the CLI did not exit after exit 3; screen:\n%s", tail(scr.String(), 2000))
	}
}

// openPTY returns a new pseudo-terminal's master and slave ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, sl
}
