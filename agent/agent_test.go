package agent

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub/streamproto"
)

// startAgent runs an agent on a socket in a temporary directory, with
// the host's users, and returns a function that runs one command.
func startAgent(t *testing.T) func(req streamproto.ExecRequest, stdin string) (code int, stdout, stderr string, err error) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the agent runs commands as other users: needs root")
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	a := newAgent(Config{SocketPath: sock, User: "root", StopGrace: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get("http://agent/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("healthz: %s", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func(req streamproto.ExecRequest, stdin string) (int, string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws://agent/v1/exec", &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return -1, "", "", err
		}
		var out, errb bytes.Buffer
		var in *strings.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		var r interface{ Read([]byte) (int, error) }
		if in != nil {
			r = in
		}
		code, err := streamproto.Exec(ctx, conn, req, r, &out, &errb, nil)
		return code, out.String(), errb.String(), err
	}
}

func TestExec(t *testing.T) {
	run := startAgent(t)
	tests := []struct {
		name       string
		req        streamproto.ExecRequest
		stdin      string
		code       int
		out, errs  string
		remoteFail bool
	}{
		{name: "stdout", req: streamproto.ExecRequest{Command: []string{"echo", "hello"}}, out: "hello\n"},
		{name: "stderr and code", req: streamproto.ExecRequest{Command: []string{"sh", "-c", "echo oops >&2; exit 3"}}, code: 3, errs: "oops\n"},
		{name: "stdin", req: streamproto.ExecRequest{Command: []string{"cat"}}, stdin: "piped\n", out: "piped\n"},
		{name: "env and workdir", req: streamproto.ExecRequest{Command: []string{"sh", "-c", "echo $FOO $HOME $(pwd)"}, Env: []string{"FOO=bar"}, WorkDir: "/tmp"}, out: "bar /root /tmp\n"},
		{name: "not found", req: streamproto.ExecRequest{Command: []string{"no-such-command-xyz"}}, code: 127, errs: "chub: no-such-command-xyz: command not found\r\n"},
		{name: "signal", req: streamproto.ExecRequest{Command: []string{"sh", "-c", "kill -9 $$"}}, code: 137},
		{name: "background child keeps pipe", req: streamproto.ExecRequest{Command: []string{"sh", "-c", "sleep 3 & echo started"}}, out: "started\n"},
		{name: "tty", req: streamproto.ExecRequest{Command: []string{"sh", "-c", "stty size; tty >/dev/null && echo isatty"}, TTY: true, Cols: 91, Rows: 33}, out: "33 91\r\nisatty\r\n"},
		{name: "unknown user", req: streamproto.ExecRequest{Command: []string{"true"}, User: "no-such-user-xyz"}, remoteFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, out, errs, err := run(tt.req, tt.stdin)
			if tt.remoteFail {
				if !streamproto.IsRemoteError(err) {
					t.Fatalf("got %v; want a remote error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || out != tt.out || errs != tt.errs {
				t.Errorf("got code %d stdout %q stderr %q; want %d %q %q", code, out, errs, tt.code, tt.out, tt.errs)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestLookupAccount(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("root:x:0:0:root:/root:/bin/bash\nazureuser:x:1000:1000::/home/azureuser:/bin/bash\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "group"), []byte("root:x:0:\nsudo:x:27:azureuser\nazureuser:x:1000:\nusers:x:100:bob,azureuser\n"), 0o644)
	a, err := lookupAccount(filepath.Join(dir, "passwd"), filepath.Join(dir, "group"), "azureuser")
	if err != nil {
		t.Fatal(err)
	}
	if a.UID != 1000 || a.GID != 1000 || a.Home != "/home/azureuser" || len(a.Groups) != 2 || a.Groups[0] != 27 || a.Groups[1] != 100 {
		t.Errorf("got %+v", a)
	}
	if _, err := lookupAccount(filepath.Join(dir, "passwd"), filepath.Join(dir, "group"), "bob"); err == nil {
		t.Error("found bob, who has no passwd entry")
	}
}
