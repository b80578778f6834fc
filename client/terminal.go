package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/computehub/chub/streamproto"
)

// TerminalOptions describe the terminal to open.
type TerminalOptions struct {
	// Session re-attaches to this session; empty opens a new login shell.
	Session string
	// Offset, with Session, is the position in the session's output the
	// client already has (Terminal.Offset): only later output is replayed.
	// Zero replays all the session kept.
	Offset int64
	// Cols and Rows are the initial size; zero keeps the session's.
	Cols, Rows uint16
}

// Terminal is an attached terminal session: Read the shell's output
// (io.EOF once it exited, then ExitCode; streamproto.ErrDetached if the
// connection was lost first), Write input, Resize, and Close to detach
// (the shell keeps running; re-attach with SessionID).
type Terminal = streamproto.Terminal

// OpenTerminal opens a terminal session in a running instance as its
// user, in their home directory, with a login shell. ctx bounds the
// whole session.
func (c *Client) OpenTerminal(ctx context.Context, ws, name string, o TerminalOptions) (*Terminal, error) {
	q := url.Values{}
	if o.Session != "" {
		q.Set("session", o.Session)
		if o.Offset > 0 {
			q.Set("offset", strconv.FormatInt(o.Offset, 10))
		}
	}
	if o.Cols > 0 && o.Rows > 0 {
		q.Set("cols", strconv.Itoa(int(o.Cols)))
		q.Set("rows", strconv.Itoa(int(o.Rows)))
	}
	path := c.computePath(ws, name) + "/terminal"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	u := strings.Replace(c.cfg.Server, "https://", "wss://", 1) + withVersion(path)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.cfg.Token)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}},
		HTTPHeader: h,
	})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return nil, decodeErrorResponse(resp)
		}
		return nil, err
	}
	conn.SetReadLimit(-1)
	return streamproto.AttachTerminal(ctx, conn)
}
