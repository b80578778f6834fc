// Package e2e drives the real chub server, with the real local runtime,
// through the public Go client: nothing here is mocked.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// chubBin is the binary under test: CHUB_BIN, or one built once for the run.
var chubBin string

func TestMain(m *testing.M) {
	if os.Getuid() != 0 {
		fmt.Println("e2e: skipped: the local runtime needs root")
		os.Exit(0)
	}
	chubBin = os.Getenv("CHUB_BIN")
	if chubBin == "" {
		dir, err := os.MkdirTemp("", "chub-e2e-bin")
		if err != nil {
			panic(err)
		}
		chubBin = filepath.Join(dir, "chub")
		cmd := exec.Command("go", "build", "-tags", "seccomp", "-o", chubBin, "../cmd/chub")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// server is one chub server process over a data dir that outlives restarts.
type server struct {
	t       *testing.T
	dataDir string
	addr    string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	extra   []string
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer starts a server on a new data dir; it is stopped (SIGTERM) and
// every instance deleted when the test ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: t.TempDir(), addr: freePort(t), extra: extra}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			c := s.client()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if cs, err := c.ListComputes(ctx, ""); err == nil {
				for _, ci := range cs {
					if op, err := c.DeleteCompute(ctx, "", ci.Name); err == nil && op != nil {
						c.Wait(ctx, op, "", "", nil)
					}
				}
			}
			s.stop(syscall.SIGTERM)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.log.String(), 4000))
		}
	})
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *server) start() {
	s.t.Helper()
	args := append([]string{"server", "--data-dir", s.dataDir, "--listen", s.addr, "--resync", "2s", "--stop-grace", "3s"}, s.extra...)
	s.cmd = exec.Command(chubBin, args...)
	if s.log == nil {
		s.log = &bytes.Buffer{}
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	ca := filepath.Join(s.dataDir, "tls", "ca.crt")
	waitFor(s.t, 5*time.Minute, "server healthy", func() bool {
		if _, err := os.Stat(ca); err != nil {
			return false
		}
		c, err := s.httpClient()
		if err != nil {
			return false
		}
		resp, err := c.Get("https://" + s.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (s *server) httpClient() (*http.Client, error) {
	return rawHTTP(filepath.Join(s.dataDir, "tls", "ca.crt"))
}

func (s *server) stop(sig syscall.Signal) {
	s.t.Helper()
	s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
		s.t.Errorf("server did not stop within 30s of %v", sig)
	}
}

func (s *server) restart() {
	s.t.Helper()
	s.stop(syscall.SIGTERM)
	s.start()
}

func (s *server) token() string {
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin-token"))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (s *server) client() *client.Client {
	return s.clientWithToken(s.token())
}

func (s *server) clientWithToken(tok string) *client.Client {
	c, err := client.New(client.Config{Server: "https://" + s.addr, Token: tok, CACert: filepath.Join(s.dataDir, "tls", "ca.crt")})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// create makes an instance and waits until it runs.
func create(t *testing.T, c *client.Client, name, size string) *client.Compute {
	t.Helper()
	ci, op, err := c.CreateCompute(ctx(t), client.CreateRequest{Name: name, Settings: chub.InstanceSettings{VMSize: size}})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if op == nil {
		t.Fatalf("create %s: no operation returned", name)
	}
	if _, err := c.Wait(ctx(t), op, "", name, nil); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return ci
}

func act(t *testing.T, c *client.Client, name string, op chub.OperationName) {
	t.Helper()
	o, err := c.Act(ctx(t), "", name, op)
	if err != nil {
		t.Fatalf("%s %s: %v", op, name, err)
	}
	if _, err := c.Wait(ctx(t), o, "", name, nil); err != nil {
		t.Fatalf("%s %s: %v", op, name, err)
	}
}

func state(t *testing.T, c *client.Client, name string) chub.State {
	t.Helper()
	ci, err := c.GetCompute(ctx(t), "", name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return ci.Properties.Properties.State
}

// run execs a shell command in the instance and returns its output and exit code.
func run(t *testing.T, c *client.Client, name, script string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code, err := c.Exec(ctx(t), "", name, client.ExecOptions{Command: []string{"/bin/sh", "-c", script}, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("exec %q in %s: %v", script, name, err)
	}
	return out.String(), code
}

func mustRun(t *testing.T, c *client.Client, name, script string) string {
	t.Helper()
	out, code := run(t, c, name, script)
	if code != 0 {
		t.Fatalf("exec %q in %s: exit %d: %s", script, name, code, out)
	}
	return out
}
