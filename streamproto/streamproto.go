// Package streamproto provides the framed protocol that carries a command's
// standard streams, exit status and terminal size over one websocket.
//
// # Protocol
//
// The client opens a websocket and sends one JSON text message, an
// [ExecRequest]. Every later message is binary; its first byte is the
// [Channel] and the rest is the payload:
//
//	0 stdin    client → server  raw bytes for the command's standard input
//	1 stdout   server → client  raw bytes of the command's standard output
//	2 stderr   server → client  raw bytes of the command's standard error
//	3 control  both ways        one JSON [Control] object
//
// Control messages: {"type":"resize","cols":C,"rows":R} (client → server)
// changes the terminal size; {"type":"eof"} (client → server) closes the
// command's standard input; {"type":"exit","code":N} (server → client) is
// the last message of a session, sent once all output has been sent;
// {"type":"error","message":M} (server → client) says the command could
// not be run and also ends the session. The server then closes the
// websocket with status 1000 (normal closure).
//
// # Terminals
//
// A terminal session (GET {compute}/terminal on the server, GET
// /v1/terminals/attach on the agent) uses the same frames without the
// opening request: its parameters are in the URL query (session=ID to
// re-attach, cols=C&rows=R for the initial size). Every message is binary.
// The server's first message is the control message
// {"type":"session","id":ID,"offset":N}: the session attached to, new or
// re-attached, and the position in the session's output of the first byte
// that follows. Output follows on stdout (1), starting, on a re-attach,
// with the session's recent output (up to 64 KiB) replayed. A client that
// re-attaches with offset=M (its position: N plus the output bytes it
// received) gets only the output after M, if the session still has it. The client sends input
// on stdin (0) and {"type":"resize","cols":C,"rows":R} on control (3).
// When the shell exits the server sends {"type":"exit","code":N} and
// closes with 1000. When the client just closes the websocket (or the
// connection drops) the shell keeps running, detached, and a client may
// re-attach with the session id until it has stayed detached for the
// agent's keep time (default 5 minutes); then the shell is hung up.
//
// No message exceeds [MaxMessage] bytes, the default read limit of
// github.com/coder/websocket, so the protocol crosses a relay that copies
// messages one by one without configuration. Nothing in the protocol
// depends on the connection under the websocket, so a dumb message relay
// between client and server is transparent.
package streamproto

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Channel is the first byte of a binary message.
type Channel byte

// The channels of a session.
const (
	Stdin   Channel = 0
	Stdout  Channel = 1
	Stderr  Channel = 2
	Control Channel = 3
)

func (c Channel) String() string {
	switch c {
	case Stdin:
		return "stdin"
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Control:
		return "control"
	}
	return fmt.Sprintf("channel(%d)", byte(c))
}

// MaxMessage is the largest message either side sends, in bytes.
const MaxMessage = 32768

// MaxPayload is the largest data payload of one binary message.
const MaxPayload = MaxMessage - 1

// ExecRequest is the first message of a session: the command to run.
type ExecRequest struct {
	// Command is the program and its arguments; empty means the user's
	// login shell.
	Command []string `json:"command,omitempty"`
	// Env holds KEY=VALUE pairs added to (and overriding) the default
	// environment.
	Env []string `json:"env,omitempty"`
	// TTY runs the command on a terminal of Cols×Rows; stderr then arrives
	// on stdout.
	TTY  bool   `json:"tty,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
	// User is the user to run as; empty means the server's default.
	User string `json:"user,omitempty"`
	// WorkDir is the working directory; empty means the user's home.
	WorkDir string `json:"workDir,omitempty"`
}

// The control message types.
const (
	TypeExit   = "exit"
	TypeResize = "resize"
	TypeEOF    = "eof"
	TypeError  = "error"
	// TypeSession opens a terminal session: it names the session (ID).
	TypeSession = "session"
)

// ControlMsg is the payload of a message on the control channel.
type ControlMsg struct {
	Type    string `json:"type"`
	Code    int    `json:"code,omitempty"`
	Cols    uint16 `json:"cols,omitempty"`
	Rows    uint16 `json:"rows,omitempty"`
	Message string `json:"message,omitempty"`
	// ID names a terminal session (TypeSession).
	ID string `json:"id,omitempty"`
	// Offset is the position in the session's output of the next output
	// byte (TypeSession).
	Offset int64 `json:"offset,omitempty"`
}

// MarshalJSON always writes the exit code of an exit message, even 0.
func (m ControlMsg) MarshalJSON() ([]byte, error) {
	type plain ControlMsg
	if m.Type == TypeExit {
		return json.Marshal(struct {
			Type string `json:"type"`
			Code int    `json:"code"`
		}{m.Type, m.Code})
	}
	return json.Marshal(plain(m))
}

// Size is a terminal size in character cells.
type Size struct {
	Cols, Rows uint16
}

// ErrBadFrame is wrapped by every error about a malformed message.
var ErrBadFrame = errors.New("streamproto: bad frame")

// EncodeFrame returns the binary message carrying payload on channel ch.
func EncodeFrame(ch Channel, payload []byte) []byte {
	b := make([]byte, 1+len(payload))
	b[0] = byte(ch)
	copy(b[1:], payload)
	return b
}

// ParseFrame splits a binary message into its channel and payload; the
// payload aliases msg.
func ParseFrame(msg []byte) (Channel, []byte, error) {
	if len(msg) == 0 {
		return 0, nil, fmt.Errorf("%w: empty message", ErrBadFrame)
	}
	if len(msg) > MaxMessage {
		return 0, nil, fmt.Errorf("%w: message of %d bytes exceeds %d", ErrBadFrame, len(msg), MaxMessage)
	}
	ch := Channel(msg[0])
	if ch > Control {
		return 0, nil, fmt.Errorf("%w: unknown channel %d", ErrBadFrame, msg[0])
	}
	return ch, msg[1:], nil
}

// EncodeControl returns the binary message carrying control message m.
func EncodeControl(m ControlMsg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // cannot happen: ControlMsg has only plain fields
	}
	return EncodeFrame(Control, b)
}

// ParseControl decodes and checks the payload of a control message.
func ParseControl(payload []byte) (ControlMsg, error) {
	var m ControlMsg
	if err := json.Unmarshal(payload, &m); err != nil {
		return ControlMsg{}, fmt.Errorf("%w: control: %v", ErrBadFrame, err)
	}
	switch m.Type {
	case TypeExit, TypeEOF, TypeError, TypeSession:
	case TypeResize:
		if m.Cols == 0 || m.Rows == 0 {
			return ControlMsg{}, fmt.Errorf("%w: resize to %dx%d", ErrBadFrame, m.Cols, m.Rows)
		}
	default:
		return ControlMsg{}, fmt.Errorf("%w: unknown control type %q", ErrBadFrame, m.Type)
	}
	return m, nil
}

// ParseRequest decodes and checks the first message of a session.
func ParseRequest(msg []byte) (ExecRequest, error) {
	var r ExecRequest
	if err := json.Unmarshal(msg, &r); err != nil {
		return ExecRequest{}, fmt.Errorf("%w: exec request: %v", ErrBadFrame, err)
	}
	for _, kv := range r.Env {
		if i := indexByte(kv, '='); i <= 0 {
			return ExecRequest{}, fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrBadFrame, kv)
		}
	}
	return r, nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
