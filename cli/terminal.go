package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/computehub/chub/client"
	"github.com/computehub/chub/streamproto"
)

// terminalCmd is `chub computetarget computeinstance terminal -n NAME`
// (use "terminal -n NAME"), or the short `chub terminal NAME` (use "terminal NAME").
func terminalCmd(g *globals, use string) *cobra.Command {
	var name, session string
	cmd := &cobra.Command{
		Use:   use,
		Short: "Open an interactive terminal (login shell) in a running compute instance",
		Long: `Open an interactive terminal in a running compute instance: a login shell of the
instance's user in their home directory, in this terminal (raw mode; window resizes follow).
The command exits with the shell's exit code. If the connection drops (or the server
restarts), chub re-attaches to the same shell for up to a minute. The shell keeps running
for a while without anyone attached (5 minutes by default): --session ID re-attaches to it
later, with its recent output replayed.`,
		Example: `  chub computetarget computeinstance terminal -n instance
  chub terminal instance
  chub terminal instance --session 3f2a...`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && name == "" {
				name = args[0]
			}
			if name == "" || len(args) > 1 {
				return fmt.Errorf("usage: chub computetarget computeinstance terminal -n NAME [--session ID]")
			}
			c, s, err := g.connect()
			if err != nil {
				return err
			}
			return g.runTerminal(cmd.Context(), c, s.Workspace, name, session)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&name, "name", "n", "", "name of the compute instance")
	f.StringVar(&session, "session", "", "re-attach to this terminal session")
	addScopeFlags(cmd, g)
	return cmd
}

// runTerminal attaches this process's terminal to a terminal session
// until the shell exits (its code becomes ours). A lost connection is
// re-attached to the same session, without replaying what was already shown.
func (g *globals) runTerminal(ctx context.Context, c *client.Client, ws, name, session string) error {
	inFd, outFd := int(os.Stdin.Fd()), int(os.Stdout.Fd())
	interactive := term.IsTerminal(inFd)
	size := func() (uint16, uint16) {
		if w, h, err := term.GetSize(outFd); err == nil {
			return uint16(w), uint16(h)
		}
		if w, h, err := term.GetSize(inFd); err == nil {
			return uint16(w), uint16(h)
		}
		return 0, 0
	}
	o := client.TerminalOptions{Session: session}
	o.Cols, o.Rows = size()
	// The session lives until the shell exits: Ctrl-C goes to the shell.
	ctx = context.WithoutCancel(ctx)
	t, err := c.OpenTerminal(ctx, ws, name, o)
	if err != nil {
		return err
	}
	cur := &currentTerminal{t: t}
	defer func() { cur.get().Close() }()
	if g.verbose {
		fmt.Fprintf(g.stderr, "Terminal session %s (re-attach with --session %s)\r\n", t.SessionID, t.SessionID)
	}
	if interactive {
		old, err := term.MakeRaw(inFd)
		if err == nil {
			defer term.Restore(inFd, old)
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				cur.get().Resize(size())
			}
		}()
	}
	go func() {
		io.Copy(cur, os.Stdin)
		if !interactive {
			// Input ended: tell the shell, as Ctrl-D would.
			cur.Write([]byte{4})
		}
	}()
	for {
		_, err = io.Copy(g.stdout, t)
		if !errors.Is(err, streamproto.ErrDetached) {
			break
		}
		fmt.Fprintf(g.stderr, "\r\n[chub: connection lost; re-attaching to terminal session %s]\r\n", t.SessionID)
		o := client.TerminalOptions{Session: t.SessionID, Offset: t.Offset()}
		o.Cols, o.Rows = size()
		nt, rerr := reattach(ctx, c, ws, name, o)
		if rerr != nil {
			return fmt.Errorf("%w; re-attaching failed: %v; try: chub computetarget computeinstance terminal -n %s --session %s", err, rerr, name, t.SessionID)
		}
		fmt.Fprintf(g.stderr, "[chub: re-attached]\r\n")
		t = nt
		cur.set(t)
	}
	if err != nil {
		return err
	}
	code, _ := t.ExitCode()
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

// reattachFor is how long a lost terminal connection is retried.
const reattachFor = time.Minute

// reattach opens session o.Session again, retrying while the server is
// unreachable or unavailable; it gives up at once when the session or the
// instance is gone or the caller may not open it.
func reattach(ctx context.Context, c *client.Client, ws, name string, o client.TerminalOptions) (*client.Terminal, error) {
	deadline := time.Now().Add(reattachFor)
	for {
		t, err := c.OpenTerminal(ctx, ws, name, o)
		if err == nil {
			return t, nil
		}
		var ce *client.Error
		if errors.As(err, &ce) && ce.StatusCode < 500 {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// currentTerminal is the terminal input and resizes go to; it changes
// when a lost connection is re-attached.
type currentTerminal struct {
	mu sync.Mutex // guards t
	t  *client.Terminal
}

func (c *currentTerminal) get() *client.Terminal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *currentTerminal) set(t *client.Terminal) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Write sends input to the current terminal; input typed while the
// connection is down is lost, not an error.
func (c *currentTerminal) Write(p []byte) (int, error) {
	c.get().Write(p)
	return len(p), nil
}
