// Package runtimetest provides the conformance suite every chub.Runtime
// must pass, run against real instances.
package runtimetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	chub "github.com/computehub/chub"
	"github.com/computehub/chub/streamproto"
)

// NewRuntime returns a new runtime for a test. Every call with the same t
// must return a fresh runtime over the same state (the same root, the same
// cluster), as a restarted server would make.
type NewRuntime func(t *testing.T) chub.Runtime

// Run runs the conformance suite against the runtimes newRuntime makes.
func Run(t *testing.T, newRuntime NewRuntime) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, newRuntime) })
	t.Run("Exec", func(t *testing.T) { testExec(t, newRuntime) })
	t.Run("Persistence", func(t *testing.T) { testPersistence(t, newRuntime) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, newRuntime) })
	t.Run("MemoryLimit", func(t *testing.T) { testMemoryLimit(t, newRuntime) })
	t.Run("Cleanup", func(t *testing.T) { testCleanup(t, newRuntime) })
}

var seq atomic.Int64

// Spec returns the spec of a small test instance with a fresh id.
func Spec(t *testing.T) chub.InstanceSpec {
	id := fmt.Sprintf("rt%d-%d-%s", os.Getpid(), seq.Add(1), strings.ToLower(randHex()))
	return chub.InstanceSpec{
		ID:          id,
		Hostname:    "host-" + id[len(id)-6:],
		CPUMillis:   1000,
		MemoryBytes: 512 << 20,
		PidsLimit:   512,
	}
}

func randHex() string {
	b := make([]byte, 4)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		io.ReadFull(f, b)
		f.Close()
	}
	return fmt.Sprintf("%x", b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Started creates and starts an instance of spec and destroys it when the
// test ends.
func Started(t *testing.T, rt chub.Runtime, spec chub.InstanceSpec) {
	t.Helper()
	t.Cleanup(func() {
		if err := rt.Destroy(context.Background(), spec.ID); err != nil {
			t.Errorf("Destroy(%s): %v", spec.ID, err)
		}
	})
	if err := rt.Start(ctxT(t), spec); err != nil {
		t.Fatalf("Start(%s): %v", spec.ID, err)
	}
}

// Result is what a command run by Exec did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Exec runs a command in a running instance through its agent.
func Exec(ctx context.Context, rt chub.Runtime, id string, req streamproto.ExecRequest, stdin io.Reader) (Result, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return rt.DialAgent(ctx, id) },
	}}
	defer client.CloseIdleConnections()
	conn, _, err := websocket.Dial(ctx, "ws://agent/v1/exec", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return Result{}, fmt.Errorf("dial the agent: %w", err)
	}
	var out, errb bytes.Buffer
	code, err := streamproto.Exec(ctx, conn, req, stdin, &out, &errb, nil)
	return Result{Code: code, Stdout: out.String(), Stderr: errb.String()}, err
}

// Sh runs a shell command as user ("" for the default) and fails the test
// unless it exits with 0; it returns the command's stdout.
func Sh(t *testing.T, rt chub.Runtime, id, user, script string) string {
	t.Helper()
	res, err := Exec(ctxT(t), rt, id, streamproto.ExecRequest{Command: []string{"sh", "-c", script}, User: user}, nil)
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	if res.Code != 0 {
		t.Fatalf("exec %q: exit %d, stdout %q, stderr %q", script, res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

func wantPhase(t *testing.T, rt chub.Runtime, id string, want chub.Phase) {
	t.Helper()
	st, err := rt.Inspect(ctxT(t), id)
	if err != nil {
		t.Fatalf("Inspect(%s): %v", id, err)
	}
	if st.Phase != want {
		t.Fatalf("Inspect(%s) = %s (%s); want %s", id, st.Phase, st.Message, want)
	}
}

func listed(t *testing.T, rt chub.Runtime, id string) bool {
	t.Helper()
	ids, err := rt.List(ctxT(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return slices.Contains(ids, id)
}

func testLifecycle(t *testing.T, newRuntime NewRuntime) {
	rt := newRuntime(t)
	ctx := ctxT(t)
	spec := Spec(t)
	id := spec.ID
	t.Cleanup(func() { rt.Destroy(context.Background(), id) })

	wantPhase(t, rt, id, chub.PhaseAbsent)
	if listed(t, rt, id) {
		t.Errorf("List has %s before Create", id)
	}
	for i := 0; i < 2; i++ {
		if err := rt.Stop(ctx, id, time.Second); err != nil {
			t.Fatalf("Stop of an absent instance: %v", err)
		}
		if err := rt.Destroy(ctx, id); err != nil {
			t.Fatalf("Destroy of an absent instance: %v", err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatalf("Create #%d: %v", i+1, err)
		}
	}
	wantPhase(t, rt, id, chub.PhaseStopped)
	if !listed(t, rt, id) {
		t.Errorf("List lacks %s after Create", id)
	}
	for i := 0; i < 2; i++ {
		if err := rt.Start(ctx, spec); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
	}
	wantPhase(t, rt, id, chub.PhaseRunning)
	st, _ := rt.Inspect(ctx, id)
	if st.StartedAt.IsZero() || time.Since(st.StartedAt) > time.Minute {
		t.Errorf("StartedAt = %v; want about now", st.StartedAt)
	}
	if got := strings.TrimSpace(Sh(t, rt, id, "", "hostname")); got != spec.Hostname {
		t.Errorf("hostname = %q; want %q", got, spec.Hostname)
	}
	for i := 0; i < 2; i++ {
		if err := rt.Stop(ctx, id, 5*time.Second); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	wantPhase(t, rt, id, chub.PhaseStopped)
	if _, err := rt.DialAgent(ctx, id); err == nil {
		t.Errorf("DialAgent of a stopped instance succeeded")
	}
	// Start of a new instance creates its disk.
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	wantPhase(t, rt, id, chub.PhaseRunning)
	for i := 0; i < 2; i++ {
		if err := rt.Destroy(ctx, id); err != nil {
			t.Fatalf("Destroy #%d: %v", i+1, err)
		}
	}
	wantPhase(t, rt, id, chub.PhaseAbsent)
	if listed(t, rt, id) {
		t.Errorf("List has %s after Destroy", id)
	}

	fresh := Spec(t)
	t.Cleanup(func() { rt.Destroy(context.Background(), fresh.ID) })
	if err := rt.Start(ctx, fresh); err != nil {
		t.Fatalf("Start without Create: %v", err)
	}
	wantPhase(t, rt, fresh.ID, chub.PhaseRunning)
}

func testExec(t *testing.T, newRuntime NewRuntime) {
	rt := newRuntime(t)
	spec := Spec(t)
	Started(t, rt, spec)
	ctx := ctxT(t)
	tests := []struct {
		name  string
		req   streamproto.ExecRequest
		stdin string
		want  Result
	}{
		{"stdout", streamproto.ExecRequest{Command: []string{"echo", "hello"}}, "", Result{0, "hello\n", ""}},
		{"stderr and exit code", streamproto.ExecRequest{Command: []string{"sh", "-c", "echo bad >&2; exit 42"}}, "", Result{42, "", "bad\n"}},
		{"stdin", streamproto.ExecRequest{Command: []string{"sh", "-c", "tr a-z A-Z"}}, "shout\n", Result{0, "SHOUT\n", ""}},
		{"default user", streamproto.ExecRequest{Command: []string{"sh", "-c", "echo $(id -un) $(id -u) $HOME $(pwd) $USER"}}, "", Result{0, "azureuser 1000 /home/azureuser /home/azureuser azureuser\n", ""}},
		{"root", streamproto.ExecRequest{Command: []string{"id", "-u"}, User: "root"}, "", Result{0, "0\n", ""}},
		{"tty", streamproto.ExecRequest{Command: []string{"sh", "-c", "stty size"}, TTY: true, Cols: 120, Rows: 40}, "", Result{0, "40 120\r\n", ""}},
		{"not found", streamproto.ExecRequest{Command: []string{"no-such-command"}}, "", Result{127, "", "chub: no-such-command: command not found\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in io.Reader
			if tt.stdin != "" {
				in = strings.NewReader(tt.stdin)
			}
			got, err := Exec(ctx, rt, spec.ID, tt.req, in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
	if _, err := Exec(ctx, rt, spec.ID, streamproto.ExecRequest{Command: []string{"true"}, User: "nobody-such"}, nil); !streamproto.IsRemoteError(err) {
		t.Errorf("exec as an unknown user: %v; want a remote error", err)
	}
}

func testPersistence(t *testing.T, newRuntime NewRuntime) {
	rt := newRuntime(t)
	spec := Spec(t)
	Started(t, rt, spec)
	if got := Sh(t, rt, spec.ID, "", "stat -c %u:%g /home/azureuser && ls -a /home/azureuser | grep -c bashrc"); got != "1000:1000\n1\n" {
		t.Errorf("home: got %q; want owner 1000:1000 and a .bashrc", got)
	}
	Sh(t, rt, spec.ID, "", "echo mine > /home/azureuser/note")
	Sh(t, rt, spec.ID, "root", "echo tool > /usr/local/bin/tool && chmod +x /usr/local/bin/tool")
	check := func(rt chub.Runtime, when string) {
		t.Helper()
		if got := Sh(t, rt, spec.ID, "", "cat /home/azureuser/note /usr/local/bin/tool"); got != "mine\ntool\n" {
			t.Errorf("%s: files hold %q; want %q", when, got, "mine\ntool\n")
		}
	}
	ctx := ctxT(t)
	if err := rt.Stop(ctx, spec.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	check(rt, "after stop and start")

	// A new runtime (a restarted server) finds the instance running.
	rt2 := newRuntime(t)
	wantPhase(t, rt2, spec.ID, chub.PhaseRunning)
	check(rt2, "through a new runtime")
	if err := rt2.Stop(ctx, spec.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rt3 := newRuntime(t)
	wantPhase(t, rt3, spec.ID, chub.PhaseStopped)
	if err := rt3.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	check(rt3, "after a stop and a start by new runtimes")
}

func testIsolation(t *testing.T, newRuntime NewRuntime) {
	rt := newRuntime(t)
	a, b := Spec(t), Spec(t)
	Started(t, rt, a)
	Started(t, rt, b)
	Sh(t, rt, a.ID, "", "echo a > /tmp/only-a && (sleep 300 >/dev/null 2>&1 &)")
	if got := Sh(t, rt, b.ID, "", "test -e /tmp/only-a && echo visible || echo invisible"); got != "invisible\n" {
		t.Errorf("b sees a's file: %q", got)
	}
	if got := Sh(t, rt, b.ID, "", "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$' || true"); got != "0\n" {
		t.Errorf("b sees a's processes: %q sleep processes", got)
	}
	if got := Sh(t, rt, a.ID, "", "cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$' || true"); got != "1\n" {
		t.Errorf("a sees %q sleep processes; want 1", got)
	}
	// The host's own files stay out of sight.
	marker := fmt.Sprintf("chub-isolation-%s", randHex())
	if err := os.WriteFile(filepath.Join("/root", marker), []byte("host"), 0o600); err == nil {
		t.Cleanup(func() { os.Remove(filepath.Join("/root", marker)) })
	}
	script := fmt.Sprintf("for p in /work /root/%s /home/azureuser/%s; do test -e $p && echo $p; done; true", marker, marker)
	if got := Sh(t, rt, a.ID, "root", script); got != "" {
		t.Errorf("host paths visible inside: %q", got)
	}
	if got := Sh(t, rt, a.ID, "root", "mount -t tmpfs none /mnt 2>&1 && echo mounted || echo denied"); !strings.HasSuffix(got, "denied\n") {
		t.Errorf("mount inside the instance: %q; want it denied", got)
	}
}

func testMemoryLimit(t *testing.T, newRuntime NewRuntime) {
	rt := newRuntime(t)
	spec := Spec(t)
	spec.MemoryBytes = 256 << 20
	Started(t, rt, spec)
	// tail keeps a whole line, and this one is 600 MiB long.
	res, err := Exec(ctxT(t), rt, spec.ID, streamproto.ExecRequest{Command: []string{"sh", "-c", "head -c 600M /dev/zero | tail -n 1 >/dev/null"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code == 0 {
		t.Errorf("allocating 600 MiB in an instance of 256 MiB succeeded")
	}
	wantPhase(t, rt, spec.ID, chub.PhaseRunning)
	if got := Sh(t, rt, spec.ID, "", "echo alive"); got != "alive\n" {
		t.Errorf("after the OOM kill: %q", got)
	}
}

func testCleanup(t *testing.T, newRuntime NewRuntime) {
	rt := newRuntime(t)
	spec := Spec(t)
	ctx := ctxT(t)
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	Sh(t, rt, spec.ID, "", "(sleep 300 >/dev/null 2>&1 &)")
	if err := rt.Destroy(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	for _, l := range HostTraces(spec.ID) {
		t.Errorf("after Destroy: %s", l)
	}
}

// HostTraces lists what this host still holds of instance id: mounts,
// cgroups and processes whose cgroup or command line mentions it. Zombies are not
// counted: an orphan whose parent (the server that started it) died
// awaits its new parent, PID 1, which alone can reap it.
func HostTraces(id string) []string {
	var out []string
	// The host's mount table as this test's parent (go test, a shell)
	// sees it: /proc/self's is the main thread's, which libcontainer may
	// have left in a container's mount namespace (see mountsUnder in
	// runtime/local), showing that container's own mounts.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", os.Getppid())); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, id) {
				out = append(out, "mount: "+line)
			}
		}
	}
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctrls {
		base := filepath.Join("/sys/fs/cgroup", c.Name())
		filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Count(strings.TrimPrefix(p, base), "/") > 3 {
				return filepath.SkipDir
			}
			if strings.Contains(d.Name(), id) {
				out = append(out, "cgroup: "+p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), id) && !zombie(filepath.Dir(p)) {
			out = append(out, "process: "+filepath.Dir(p))
		}
	}
	// Helpers a runtime runs outside the instance's cgroups (a user-mode
	// network) name the instance on their command line.
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), id) && !zombie(filepath.Dir(p)) {
			out = append(out, "process: "+filepath.Dir(p)+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func zombie(procDir string) bool {
	b, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return true // gone
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
