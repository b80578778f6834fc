package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub/apps"
)

// startAppAgent runs an agent on a socket and returns an HTTP client of it.
func startAppAgent(t *testing.T) (*Agent, *http.Client) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the agent runs applications as other users: needs root")
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
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	for i := 0; ; i++ {
		resp, err := hc.Get("http://agent/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 500 {
			t.Fatalf("agent never answered: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a, hc
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startAppReq(t *testing.T, hc *http.Client, spec apps.Spec) (appStatus, int, string) {
	t.Helper()
	body, _ := json.Marshal(appStartRequest{Spec: spec})
	resp, err := hc.Post("http://agent/v1/apps/"+spec.Name+"/start", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	var st appStatus
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(buf.Bytes(), &st); err != nil {
			t.Fatalf("start answer %q: %v", buf.String(), err)
		}
	}
	return st, resp.StatusCode, buf.String()
}

// TestAppStartsOnDemandAndIsKeptRunning starts an application, kills it and
// sees the agent start it again; a failing one reports its output.
func TestAppStartsOnDemandAndIsKeptRunning(t *testing.T) {
	a, hc := startAppAgent(t)
	port := freeTCPPort(t)
	spec, err := apps.CustomSpec(apps.Custom{Name: "web", Port: port, Command: []string{"exec python3 -m http.server {port} --bind 127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	spec.ReadyPath = "/"
	st, code, msg := startAppReq(t, hc, spec)
	if code != 200 || !st.Ready || st.Port != port || st.PID == 0 {
		t.Fatalf("start: %d %q %+v; want 200, ready on port %d", code, msg, st, port)
	}
	get := func() int {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != 200 {
		t.Fatalf("GET the application: %d; want 200", got)
	}
	a.act.mu.Lock()
	kind := a.act.kind
	a.act.mu.Unlock()
	if kind != "app" {
		t.Errorf("activity kind after a start: %q; want app", kind)
	}
	// The same spec again: the running process answers.
	if st2, code, _ := startAppReq(t, hc, spec); code != 200 || st2.PID != st.PID {
		t.Fatalf("second start: %d, pid %d; want 200 and the same pid %d", code, st2.PID, st.PID)
	}
	syscall.Kill(st.PID, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st3, code, _ := startAppReq(t, hc, spec)
		if code == 200 && st3.PID != st.PID && st3.Restarts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted after a kill: %d %+v", code, st3)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Stopped, it is not restarted.
	resp, err := hc.Post("http://agent/v1/apps/web/stop", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stop: %v %v", resp, err)
	}
	resp.Body.Close()
	time.Sleep(1500 * time.Millisecond) // longer than the first restart's backoff
	if got := get(); got != 0 {
		t.Fatalf("GET a stopped application: %d; want no answer", got)
	}

	bad := apps.Spec{Name: "bad", Port: freeTCPPort(t), Command: []string{"/bin/sh", "-c", "echo no such luck >&2; exit 3"}}
	if _, code, msg := startAppReq(t, hc, bad); code != http.StatusBadGateway || !strings.Contains(msg, "no such luck") || !strings.Contains(msg, "exit status 3") {
		t.Fatalf("a failing application: %d %q; want 502 with its output", code, msg)
	}
	missing := apps.Spec{Name: "missing", Port: 1, Command: []string{"no-such-program-here"}}
	if _, code, _ := startAppReq(t, hc, missing); code != http.StatusNotFound {
		t.Fatalf("an application whose program is missing: %d; want 404", code)
	}

	resp, err = hc.Get("http://agent/v1/apps")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Available []string    `json:"available"`
		Running   []appStatus `json:"running"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	if _, err := os.Stat("/usr/bin/jupyter-notebook"); err == nil && !contains(list.Available, "jupyter") {
		t.Errorf("available: %v; want jupyter (jupyter-notebook is installed)", list.Available)
	}
	if len(list.Running) != 1 {
		t.Errorf("running: %+v; want bad only", list.Running)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
