package client

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/computehub/chub/streamproto"
)

// ExecOptions describe a command to run inside an instance.
type ExecOptions struct {
	Command []string
	Env     []string
	TTY     bool
	Cols    uint16
	Rows    uint16
	User    string
	WorkDir string
	Stdin   io.Reader // nil: the command's stdin is closed at once
	Stdout  io.Writer
	Stderr  io.Writer
	Resize  <-chan streamproto.Size
}

// Exec runs a command inside a running instance and returns its exit code.
func (c *Client) Exec(ctx context.Context, ws, name string, o ExecOptions) (int, error) {
	u := strings.Replace(c.cfg.Server, "https://", "wss://", 1) + withVersion(c.computePath(ws, name)+"/exec")
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.cfg.Token)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}},
		HTTPHeader: h,
	})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return -1, decodeErrorResponse(resp)
		}
		return -1, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	stdin := o.Stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	req := streamproto.ExecRequest{Command: o.Command, Env: o.Env, TTY: o.TTY, Cols: o.Cols, Rows: o.Rows, User: o.User, WorkDir: o.WorkDir}
	return streamproto.Exec(ctx, conn, req, stdin, stdout, stderr, o.Resize)
}
