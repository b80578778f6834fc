package streamproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"

	"github.com/coder/websocket"
)

var sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// ValidSessionID reports whether id has the shape of a terminal session id
// (8 to 64 lower-case hex digits).
func ValidSessionID(id string) bool { return sessionIDPattern.MatchString(id) }

// ErrDetached is returned by [Terminal.Read] when the connection ended
// without an exit status: the shell may still run, and the session can be
// re-attached with its id.
var ErrDetached = errors.New("terminal connection lost before the shell exited")

// Terminal is the client side of an attached terminal session.
type Terminal struct {
	conn *websocket.Conn
	ctx  context.Context
	// SessionID is the session attached to; re-attach with it.
	SessionID string

	mu      sync.Mutex // guards pending, pos, code, exited, err (Read is single-goroutine)
	pending []byte
	pos     int64 // position in the session's output after the last output message
	code    int
	exited  bool
	err     error
}

// AttachTerminal reads the session message that opens a terminal session
// on conn. The terminal owns conn from then on; ctx bounds its life.
func AttachTerminal(ctx context.Context, conn *websocket.Conn) (*Terminal, error) {
	typ, msg, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("read terminal session: %w", err)
	}
	if typ != websocket.MessageBinary {
		conn.CloseNow()
		return nil, fmt.Errorf("%w: unexpected text message", ErrBadFrame)
	}
	ch, payload, err := ParseFrame(msg)
	if err == nil && ch != Control {
		err = fmt.Errorf("%w: the first message is on %v, not control", ErrBadFrame, ch)
	}
	var m ControlMsg
	if err == nil {
		m, err = ParseControl(payload)
	}
	if err == nil && m.Type == TypeError {
		err = &RemoteError{Message: m.Message}
	} else if err == nil && m.Type != TypeSession {
		err = fmt.Errorf("%w: the first message is %q, not session", ErrBadFrame, m.Type)
	}
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	return &Terminal{conn: conn, ctx: ctx, SessionID: m.ID, pos: m.Offset}, nil
}

// Read reads the shell's output. It returns io.EOF once the shell has
// exited (see ExitCode), and ErrDetached if the connection ended first.
func (t *Terminal) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.pending) == 0 {
		if t.exited {
			return 0, io.EOF
		}
		if t.err != nil {
			return 0, t.err
		}
		t.mu.Unlock()
		typ, msg, err := t.conn.Read(t.ctx)
		t.mu.Lock()
		if err != nil {
			if t.ctx.Err() != nil {
				t.err = t.ctx.Err()
			} else {
				t.err = fmt.Errorf("%w: %v", ErrDetached, err)
			}
			continue
		}
		if typ != websocket.MessageBinary {
			t.err = fmt.Errorf("%w: unexpected text message", ErrBadFrame)
			continue
		}
		ch, payload, err := ParseFrame(msg)
		if err != nil {
			t.err = err
			continue
		}
		switch ch {
		case Stdout, Stderr:
			t.pending = payload
			t.pos += int64(len(payload))
		case Control:
			m, err := ParseControl(payload)
			switch {
			case err != nil:
				t.err = err
			case m.Type == TypeExit:
				t.exited, t.code = true, m.Code
				t.conn.Close(websocket.StatusNormalClosure, "")
			case m.Type == TypeError:
				t.err = &RemoteError{Message: m.Message}
			}
		default:
			t.err = fmt.Errorf("%w: server sent on %v", ErrBadFrame, ch)
		}
	}
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	return n, nil
}

// Write sends p to the shell as typed input.
func (t *Terminal) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), MaxPayload)
		if err := t.conn.Write(t.ctx, websocket.MessageBinary, EncodeFrame(Stdin, p[:k])); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// Resize sets the terminal's size.
func (t *Terminal) Resize(cols, rows uint16) error {
	if cols == 0 || rows == 0 {
		return nil
	}
	return t.conn.Write(t.ctx, websocket.MessageBinary, EncodeControl(ControlMsg{Type: TypeResize, Cols: cols, Rows: rows}))
}

// Offset is the position in the session's output up to which output has
// arrived: re-attach with it to get only what follows.
func (t *Terminal) Offset() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// ExitCode returns the shell's exit code once Read has returned io.EOF.
func (t *Terminal) ExitCode() (code int, exited bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.code, t.exited
}

// Close detaches from the session; the shell keeps running.
func (t *Terminal) Close() error {
	return t.conn.Close(websocket.StatusNormalClosure, "detach")
}
