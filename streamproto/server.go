package streamproto

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/coder/websocket"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// Session is the server side of one exec session.
type Session struct {
	conn *websocket.Conn
	ctx  context.Context
	// Request is the command the client asked for.
	Request ExecRequest
}

// Accept reads the exec request that opens a session on conn.
func Accept(ctx context.Context, conn *websocket.Conn) (*Session, error) {
	typ, msg, err := conn.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read exec request: %w", err)
	}
	if typ != websocket.MessageText {
		return nil, fmt.Errorf("%w: the first message must be a JSON text message", ErrBadFrame)
	}
	req, err := ParseRequest(msg)
	if err != nil {
		return nil, err
	}
	return &Session{conn: conn, ctx: ctx, Request: req}, nil
}

// Input is one message from the client: Data for stdin, or a control
// message (Control.Type is TypeResize or TypeEOF).
type Input struct {
	Data    []byte
	Control *ControlMsg
}

// ReadInput returns the client's next stdin data or control message.
// Only one goroutine may call it at a time.
func (s *Session) ReadInput(ctx context.Context) (Input, error) {
	for {
		typ, msg, err := s.conn.Read(ctx)
		if err != nil {
			return Input{}, err
		}
		if typ != websocket.MessageBinary {
			return Input{}, fmt.Errorf("%w: unexpected text message", ErrBadFrame)
		}
		ch, payload, err := ParseFrame(msg)
		if err != nil {
			return Input{}, err
		}
		switch ch {
		case Stdin:
			if len(payload) == 0 {
				continue
			}
			return Input{Data: payload}, nil
		case Control:
			m, err := ParseControl(payload)
			if err != nil {
				return Input{}, err
			}
			if m.Type != TypeResize && m.Type != TypeEOF {
				return Input{}, fmt.Errorf("%w: client sent control %q", ErrBadFrame, m.Type)
			}
			return Input{Control: &m}, nil
		default:
			return Input{}, fmt.Errorf("%w: client sent on %v", ErrBadFrame, ch)
		}
	}
}

// Writer returns a writer that sends everything written to it on ch,
// split into messages of at most MaxPayload bytes.
func (s *Session) Writer(ch Channel) io.Writer { return &chanWriter{s: s, ch: ch} }

type chanWriter struct {
	s   *Session
	ch  Channel
	buf []byte
}

func (w *chanWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), MaxPayload)
		w.buf = append(w.buf[:0], byte(w.ch))
		w.buf = append(w.buf, p[:k]...)
		if err := w.s.conn.Write(w.s.ctx, websocket.MessageBinary, w.buf); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

// Exit sends the command's exit code and closes the session normally.
func (s *Session) Exit(code int) error {
	err := s.conn.Write(s.ctx, websocket.MessageBinary, EncodeControl(ControlMsg{Type: TypeExit, Code: code}))
	s.conn.Close(websocket.StatusNormalClosure, "")
	return err
}

// Fail tells the client the command could not be run and closes the session.
func (s *Session) Fail(message string) error {
	err := s.conn.Write(s.ctx, websocket.MessageBinary, EncodeControl(ControlMsg{Type: TypeError, Message: message}))
	s.conn.Close(websocket.StatusNormalClosure, "")
	return err
}
