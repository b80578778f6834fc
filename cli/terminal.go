package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

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
The command exits with the shell's exit code. If the connection drops, the shell keeps
running for a while (5 minutes by default): re-attach with --session ID to get it back
with its recent output.`,
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
// until the shell exits (its code becomes ours) or the connection is lost.
func (g *globals) runTerminal(ctx context.Context, c *client.Client, ws, name, session string) error {
	inFd, outFd := int(os.Stdin.Fd()), int(os.Stdout.Fd())
	interactive := term.IsTerminal(inFd)
	o := client.TerminalOptions{Session: session}
	if w, h, err := term.GetSize(outFd); err == nil {
		o.Cols, o.Rows = uint16(w), uint16(h)
	} else if w, h, err := term.GetSize(inFd); err == nil {
		o.Cols, o.Rows = uint16(w), uint16(h)
	}
	// The session lives until the shell exits: Ctrl-C goes to the shell.
	ctx = context.WithoutCancel(ctx)
	t, err := c.OpenTerminal(ctx, ws, name, o)
	if err != nil {
		return err
	}
	defer t.Close()
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
				w, h, err := term.GetSize(outFd)
				if err != nil {
					w, h, err = term.GetSize(inFd)
				}
				if err == nil {
					t.Resize(uint16(w), uint16(h))
				}
			}
		}()
	}
	go func() {
		io.Copy(t, os.Stdin)
		if !interactive {
			// Input ended: tell the shell, as Ctrl-D would.
			t.Write([]byte{4})
		}
	}()
	_, err = io.Copy(g.stdout, t)
	if errors.Is(err, streamproto.ErrDetached) {
		return fmt.Errorf("%w; the shell keeps running for a while: re-attach with chub computetarget computeinstance terminal -n %s --session %s", err, name, t.SessionID)
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
