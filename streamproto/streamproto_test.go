package streamproto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func FuzzParse(f *testing.F) {
	seeds := [][]byte{
		{},
		{0},
		{1, 'h', 'i'},
		{4},
		{255, 1},
		EncodeControl(ControlMsg{Type: TypeExit, Code: 3}),
		EncodeControl(ControlMsg{Type: TypeResize, Cols: 80, Rows: 24}),
		EncodeControl(ControlMsg{Type: TypeEOF}),
		EncodeControl(ControlMsg{Type: TypeError, Message: "no such user"}),
		append([]byte{3}, `{"type":"resize","cols":0,"rows":1}`...),
		append([]byte{3}, `{"type":"exit","code":-1}`...),
		append([]byte{3}, `{"type":"x"}`...),
		append([]byte{3}, `{`...),
		append([]byte{3}, `{"type":"resize","cols":70000}`...),
		[]byte(`{"command":["ls","-l"],"env":["A=1"],"tty":true,"cols":80,"rows":24}`),
		[]byte(`{"env":["=x"]}`),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if r, err := ParseRequest(msg); err == nil {
			for _, kv := range r.Env {
				if !strings.Contains(kv, "=") || kv[0] == '=' {
					t.Fatalf("accepted env %q", kv)
				}
			}
		}
		ch, payload, err := ParseFrame(msg)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if got := EncodeFrame(ch, payload); !bytes.Equal(got, msg) {
			t.Fatalf("re-encoded %q; want %q", got, msg)
		}
		if ch != Control {
			return
		}
		m, err := ParseControl(payload)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if m.Type == TypeResize && (m.Cols == 0 || m.Rows == 0) {
			t.Fatalf("accepted resize %+v", m)
		}
		_, p2, _ := ParseFrame(EncodeControl(m))
		m2, err := ParseControl(p2)
		if err != nil || m2 != m {
			t.Fatalf("round trip of %+v gave %+v, %v", m, m2, err)
		}
	})
}

// echoServer runs a session that echoes stdin to stdout (upper-cased on
// stderr), reports resizes on stdout and exits with 7 at eof.
func echoServer(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		s, err := Accept(r.Context(), c)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		if s.Request.User == "nobody-here" {
			s.Fail("no such user")
			return
		}
		out, errw := s.Writer(Stdout), s.Writer(Stderr)
		for {
			in, err := s.ReadInput(r.Context())
			if err != nil {
				t.Errorf("read input: %v", err)
				return
			}
			switch {
			case in.Data != nil:
				out.Write(in.Data)
				errw.Write(bytes.ToUpper(in.Data))
			case in.Control.Type == TypeResize:
				io.WriteString(out, "resized;")
			case in.Control.Type == TypeEOF:
				s.Exit(7)
				return
			}
		}
	}))
}

// relay copies websocket messages one by one, as the API server does.
func relay(t *testing.T, backend string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		front, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer front.CloseNow()
		back, _, err := websocket.Dial(r.Context(), backend, nil)
		if err != nil {
			t.Errorf("relay dial: %v", err)
			return
		}
		defer back.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		pipe := func(dst, src *websocket.Conn) {
			defer cancel()
			for {
				typ, msg, err := src.Read(ctx)
				if err != nil {
					return
				}
				if err := dst.Write(ctx, typ, msg); err != nil {
					return
				}
			}
		}
		go pipe(back, front)
		pipe(front, back)
	}))
}

func TestExecThroughRelay(t *testing.T) {
	srv := echoServer(t)
	defer srv.Close()
	rl := relay(t, "ws"+strings.TrimPrefix(srv.URL, "http"))
	defer rl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := strings.Repeat("abcdefgh", 20000) // several messages
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(rl.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code, err := Exec(ctx, conn, ExecRequest{Command: []string{"cat"}}, strings.NewReader(big), &stdout, &stderr, nil)
	if err != nil || code != 7 {
		t.Fatalf("Exec = %d, %v; want 7, nil", code, err)
	}
	if stdout.String() != big {
		t.Errorf("stdout has %d bytes; want %d", stdout.Len(), len(big))
	}
	if stderr.String() != strings.ToUpper(big) {
		t.Errorf("stderr has %d bytes; want %d upper-cased", stderr.Len(), len(big))
	}

	conn, _, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(rl.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resize := make(chan Size, 1)
	resize <- Size{Cols: 100, Rows: 40}
	pr, pw := io.Pipe()
	go func() { time.Sleep(100 * time.Millisecond); pw.Close() }()
	stdout.Reset()
	code, err = Exec(ctx, conn, ExecRequest{TTY: true}, pr, &stdout, nil, resize)
	if err != nil || code != 7 || stdout.String() != "resized;" {
		t.Fatalf("Exec = %d, %v, stdout %q; want 7, nil, \"resized;\"", code, err, stdout.String())
	}

	conn, _, err = websocket.Dial(ctx, "ws"+strings.TrimPrefix(rl.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Exec(ctx, conn, ExecRequest{User: "nobody-here"}, nil, nil, nil, nil)
	if !IsRemoteError(err) {
		t.Fatalf("Exec as unknown user = %v; want a RemoteError", err)
	}
}
