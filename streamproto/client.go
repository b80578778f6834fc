package streamproto

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/coder/websocket"
)

// RemoteError is a session that the server ended with an error control
// message: the command could not be run.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "remote: " + e.Message }

// Exec runs req over conn and copies the command's streams: stdin (which
// may be nil) to the command, its output to stdout and stderr (either may
// be nil), and every size received on resize (which may be nil) to its
// terminal. It returns the command's exit code once the server sends it.
// Exec closes conn before it returns.
func Exec(ctx context.Context, conn *websocket.Conn, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer, resize <-chan Size) (exitCode int, err error) {
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	first, err := jsonMarshal(req)
	if err != nil {
		return -1, err
	}
	if err := conn.Write(ctx, websocket.MessageText, first); err != nil {
		return -1, fmt.Errorf("send exec request: %w", err)
	}

	// Input: stdin data, then eof; resizes at any time.
	go func() {
		if stdin == nil {
			_ = conn.Write(ctx, websocket.MessageBinary, EncodeControl(ControlMsg{Type: TypeEOF}))
			return
		}
		buf := make([]byte, MaxMessage)
		for {
			n, rerr := stdin.Read(buf[1:])
			if n > 0 {
				buf[0] = byte(Stdin)
				if err := conn.Write(ctx, websocket.MessageBinary, buf[:1+n]); err != nil {
					return
				}
			}
			if rerr != nil {
				_ = conn.Write(ctx, websocket.MessageBinary, EncodeControl(ControlMsg{Type: TypeEOF}))
				return
			}
		}
	}()
	if resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if sz.Cols == 0 || sz.Rows == 0 {
						continue
					}
					msg := EncodeControl(ControlMsg{Type: TypeResize, Cols: sz.Cols, Rows: sz.Rows})
					if err := conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
						return
					}
				}
			}
		}()
	}

	for {
		typ, msg, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("session ended before the exit status: %w", err)
		}
		if typ != websocket.MessageBinary {
			return -1, fmt.Errorf("%w: unexpected text message", ErrBadFrame)
		}
		ch, payload, err := ParseFrame(msg)
		if err != nil {
			return -1, err
		}
		switch ch {
		case Stdout:
			if stdout != nil {
				if _, err := stdout.Write(payload); err != nil {
					return -1, fmt.Errorf("write stdout: %w", err)
				}
			}
		case Stderr:
			if stderr != nil {
				if _, err := stderr.Write(payload); err != nil {
					return -1, fmt.Errorf("write stderr: %w", err)
				}
			}
		case Control:
			m, err := ParseControl(payload)
			if err != nil {
				return -1, err
			}
			switch m.Type {
			case TypeExit:
				conn.Close(websocket.StatusNormalClosure, "")
				return m.Code, nil
			case TypeError:
				conn.Close(websocket.StatusNormalClosure, "")
				return -1, &RemoteError{Message: m.Message}
			}
		default:
			return -1, fmt.Errorf("%w: server sent on %v", ErrBadFrame, ch)
		}
	}
}

// IsRemoteError reports whether err says the server could not run the command.
func IsRemoteError(err error) bool {
	var e *RemoteError
	return errors.As(err, &e)
}
