package streamproto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fuzzMessage is one websocket message a fake agent sends.
type fuzzMessage struct {
	text bool
	data []byte
}

// splitMessages cuts the fuzzer's bytes into messages: a length byte (its
// top bit marking a text message) and that many bytes, again and again.
func splitMessages(b []byte) []fuzzMessage {
	var out []fuzzMessage
	for len(b) > 0 {
		n := int(b[0] & 0x7f)
		text := b[0]&0x80 != 0
		b = b[1:]
		n = min(n, len(b))
		out = append(out, fuzzMessage{text, b[:n]})
		b = b[n:]
	}
	return out
}

func joinMessages(ms ...[]byte) []byte {
	var out []byte
	for _, m := range ms {
		out = append(out, byte(len(m)))
		out = append(out, m...)
	}
	return out
}

// agentStub is a websocket server that answers each connection with the
// messages registered for its ?id=, then closes normally.
type agentStub struct {
	srv  *httptest.Server
	mu   sync.Mutex
	next int
	msgs map[string][]fuzzMessage
}

func newAgentStub(tb testing.TB) *agentStub {
	a := &agentStub{msgs: map[string][]fuzzMessage{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		a.mu.Lock()
		msgs := a.msgs[r.URL.Query().Get("id")]
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if r.URL.Query().Get("exec") != "" {
			if _, _, err := c.Read(ctx); err != nil { // the exec request
				return
			}
		}
		go func() { // drain what the client sends (stdin, eof)
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		for _, m := range msgs {
			typ := websocket.MessageBinary
			if m.text {
				typ = websocket.MessageText
			}
			if c.Write(ctx, typ, m.data) != nil {
				return
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	tb.Cleanup(a.srv.Close)
	return a
}

func (a *agentStub) dial(t *testing.T, ctx context.Context, msgs []fuzzMessage, exec bool) *websocket.Conn {
	a.mu.Lock()
	a.next++
	id := strings.Repeat("x", a.next%3) + string(rune('a'+a.next%26)) + time.Now().Format("150405.000000000")
	a.msgs[id] = msgs
	a.mu.Unlock()
	t.Cleanup(func() { a.mu.Lock(); delete(a.msgs, id); a.mu.Unlock() })
	u := "ws" + strings.TrimPrefix(a.srv.URL, "http") + "/?id=" + id
	if exec {
		u += "&exec=1"
	}
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial the stub agent: %v", err)
	}
	return conn
}

// expectSession runs the protocol's rules over the messages: what the
// client should have written to stdout and stderr, and how it should end.
func expectSession(msgs []fuzzMessage) (stdout, stderr []byte, code int, ended string) {
	for _, m := range msgs {
		if m.text {
			return stdout, stderr, -1, "bad"
		}
		ch, payload, err := ParseFrame(m.data)
		if err != nil {
			return stdout, stderr, -1, "bad"
		}
		switch ch {
		case Stdout:
			stdout = append(stdout, payload...)
		case Stderr:
			stderr = append(stderr, payload...)
		case Control:
			c, err := ParseControl(payload)
			switch {
			case err != nil:
				return stdout, stderr, -1, "bad"
			case c.Type == TypeExit:
				return stdout, stderr, c.Code, "exit"
			case c.Type == TypeError:
				return stdout, stderr, -1, "remote"
			}
		default:
			return stdout, stderr, -1, "bad"
		}
	}
	return stdout, stderr, -1, "closed"
}

// FuzzExecClient plays a hostile or broken agent against the exec client
// (what the API's exec and the CLI run): whatever the agent sends, Exec
// returns promptly, copies exactly the output sent before the end, and
// reports the exit code, the remote error, a bad frame, or the lost
// session, as the messages say.
func FuzzExecClient(f *testing.F) {
	f.Add(joinMessages(EncodeFrame(Stdout, []byte("hello\n")), EncodeFrame(Stderr, []byte("warn")), EncodeControl(ControlMsg{Type: TypeExit, Code: 3})))
	f.Add(joinMessages(EncodeControl(ControlMsg{Type: TypeError, Message: "no such user"})))
	f.Add(joinMessages(EncodeFrame(Stdout, []byte("partial"))))
	f.Add(joinMessages(EncodeFrame(Stdin, []byte("backwards"))))
	f.Add(joinMessages(EncodeFrame(9, nil)))
	f.Add(joinMessages([]byte{3, '{'}))
	f.Add(joinMessages(EncodeControl(ControlMsg{Type: TypeResize, Cols: 1, Rows: 1}), EncodeControl(ControlMsg{Type: TypeExit})))
	f.Add(append([]byte{0x80 | 2}, "{}"...))
	f.Add([]byte{})
	stub := newAgentStub(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := splitMessages(data)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn := stub.dial(t, ctx, msgs, true)
		var stdout, stderr bytes.Buffer
		code, err := Exec(ctx, conn, ExecRequest{Command: []string{"true"}}, nil, &stdout, &stderr, nil)
		if ctx.Err() != nil {
			t.Fatalf("Exec did not return within 10s for %q", data)
		}
		wantOut, wantErr, wantCode, ended := expectSession(msgs)
		if !bytes.Equal(stdout.Bytes(), wantOut) || !bytes.Equal(stderr.Bytes(), wantErr) {
			t.Fatalf("messages %q: stdout %q, stderr %q; want %q, %q", data, stdout.Bytes(), stderr.Bytes(), wantOut, wantErr)
		}
		switch ended {
		case "exit":
			if err != nil || code != wantCode {
				t.Fatalf("messages %q: Exec = %d, %v; want exit %d", data, code, err, wantCode)
			}
		case "remote":
			if !IsRemoteError(err) {
				t.Fatalf("messages %q: Exec = %d, %v; want a RemoteError", data, code, err)
			}
		case "bad":
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("messages %q: Exec = %d, %v; want ErrBadFrame", data, code, err)
			}
		case "closed":
			if err == nil || code != -1 || errors.Is(err, ErrBadFrame) {
				t.Fatalf("messages %q: Exec = %d, %v; want the session-ended error", data, code, err)
			}
		}
	})
}

// FuzzTerminalClient plays a hostile or broken agent against a terminal
// client: AttachTerminal needs the session message first; Read then gives
// exactly the output sent, ending with io.EOF on exit and an error
// otherwise, and Offset counts the output from the session's offset.
func FuzzTerminalClient(f *testing.F) {
	session := EncodeControl(ControlMsg{Type: TypeSession, ID: "0123abcd", Offset: 10})
	f.Add(joinMessages(session, EncodeFrame(Stdout, []byte("$ ")), EncodeControl(ControlMsg{Type: TypeExit, Code: 0})))
	f.Add(joinMessages(session, EncodeFrame(Stdout, []byte("$ "))))
	f.Add(joinMessages(EncodeFrame(Stdout, []byte("no session first"))))
	f.Add(joinMessages(EncodeControl(ControlMsg{Type: TypeError, Message: "no such session"})))
	f.Add(joinMessages(session, []byte{7}))
	f.Add(joinMessages(session, EncodeControl(ControlMsg{Type: TypeSession, ID: "x"})))
	stub := newAgentStub(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := splitMessages(data)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn := stub.dial(t, ctx, msgs, false)
		term, err := AttachTerminal(ctx, conn)
		if len(msgs) == 0 || msgs[0].text {
			if err == nil {
				t.Fatalf("messages %q: attached without a session message", data)
			}
			return
		}
		ch, payload, perr := ParseFrame(msgs[0].data)
		first, cerr := ParseControl(payload)
		if perr != nil || ch != Control || cerr != nil || first.Type != TypeSession {
			if err == nil {
				t.Fatalf("messages %q: attached on a first message that is not a session", data)
			}
			if first.Type == TypeError && perr == nil && ch == Control && cerr == nil && !IsRemoteError(err) {
				t.Fatalf("messages %q: AttachTerminal = %v; want a RemoteError", data, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("messages %q: AttachTerminal = %v", data, err)
		}
		if term.SessionID != first.ID {
			t.Fatalf("session id %q; want %q", term.SessionID, first.ID)
		}
		got, rerr := io.ReadAll(term)
		if ctx.Err() != nil {
			t.Fatalf("Read did not end within 10s for %q", data)
		}
		wantOut, wantErrOut, wantCode, ended := expectSession(msgs[1:])
		want := append(wantOut, wantErrOut...) // a terminal has one output stream
		// Output before the end arrives in full, stdout and stderr
		// interleaved: compare the length.
		if len(got) != len(want) {
			t.Fatalf("messages %q: read %q; want %d bytes", data, got, len(want))
		}
		code, exited := term.ExitCode()
		switch ended {
		case "exit":
			if rerr != nil || !exited || code != wantCode {
				t.Fatalf("messages %q: Read ended %v, exit %d %v; want EOF and exit %d", data, rerr, code, exited, wantCode)
			}
		case "closed":
			if !errors.Is(rerr, ErrDetached) || exited {
				t.Fatalf("messages %q: Read ended %v; want ErrDetached", data, rerr)
			}
		default:
			if rerr == nil || exited {
				t.Fatalf("messages %q: Read ended %v, exited %v; want an error", data, rerr, exited)
			}
		}
		if ended == "exit" || ended == "closed" {
			if off := term.Offset(); off != first.Offset+int64(len(want)) {
				t.Fatalf("messages %q: Offset %d; want %d", data, off, first.Offset+int64(len(want)))
			}
		}
	})
}
