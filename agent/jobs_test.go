package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/agentclient"
	"github.com/computehub/chub/jobproto"
)

// TestMain lets the test binary be a job's supervisor: the agent under
// test runs it as `<binary> agent job-supervise <id>`, as it runs chub.
func TestMain(m *testing.M) {
	if len(os.Args) >= 3 && os.Args[1] == "agent" && os.Args[2] == "job-supervise" {
		if err := Supervise(context.Background(), os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const jobUID = 4242

// sockRuntime reaches one agent's socket, whatever the instance.
type sockRuntime struct {
	chub.Runtime
	sock string
}

func (s sockRuntime) DialAgent(ctx context.Context, id string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", s.sock)
}

// jobEnv is what the job tests share: a jobs root, a user "jobuser"
// (uid 4242) with a home, and an etc dir naming it.
type jobEnv struct {
	root, etc, home string
}

func newJobEnv(t *testing.T) *jobEnv {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the agent runs jobs as other users: needs root")
	}
	// The job's user must reach its working directory: no 0700 parent.
	base, err := os.MkdirTemp("", "chub-jobs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	e := &jobEnv{root: filepath.Join(base, "jobs"), etc: filepath.Join(base, "etc"), home: filepath.Join(base, "home")}
	os.Mkdir(e.etc, 0o755)
	os.Mkdir(e.home, 0o755)
	os.Chown(e.home, jobUID, jobUID)
	os.WriteFile(filepath.Join(e.etc, "passwd"), []byte("root:x:0:0:root:/root:/bin/bash\njobuser:x:4242:4242::"+e.home+":/bin/bash\n"), 0o644)
	os.WriteFile(filepath.Join(e.etc, "group"), []byte("root:x:0:\njobuser:x:4242:\nextra:x:4343:jobuser\n"), 0o644)
	return e
}

// start runs an agent over the env's jobs root; stop ends it (as the
// instance stopping would).
func (e *jobEnv) start(t *testing.T) (a *Agent, c *agentclient.Client, stop func()) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	a = newAgent(Config{SocketPath: sock, User: "jobuser", StopGrace: 3 * time.Second,
		JobsRoot: e.root, SupervisorPath: exe, JobKillGrace: time.Second})
	a.etcDir = e.etc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
	t.Cleanup(stop)
	c = &agentclient.Client{Runtime: sockRuntime{sock: sock}, CallTimeout: 30 * time.Second}
	waitUntil(t, 5*time.Second, "agent healthy", func() bool {
		_, err := c.ListJobs(context.Background(), "i")
		return err == nil
	})
	return a, c, stop
}

// runJob puts, starts and lets go a job; it returns the held status.
func runJob(t *testing.T, c *agentclient.Client, spec jobproto.Spec) jobproto.Status {
	t.Helper()
	ctx := context.Background()
	st, err := c.PutJob(ctx, "i", spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != jobproto.StateCreated {
		t.Fatalf("after PUT: state %s; want created", st.State)
	}
	held, err := c.StartJob(ctx, "i", spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if held.State != jobproto.StateHeld || held.PID <= 0 {
		t.Fatalf("after start: %+v; want held with a pid", held)
	}
	st, err = c.GoJob(ctx, "i", spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != jobproto.StateRunning && st.State != jobproto.StateExited {
		t.Fatalf("after go: %+v; want running", st)
	}
	return held
}

func waitExited(t *testing.T, c *agentclient.Client, id string) jobproto.Status {
	t.Helper()
	var st jobproto.Status
	waitUntil(t, 30*time.Second, "job "+id+" exited", func() bool {
		var err error
		st, err = c.JobStatus(context.Background(), "i", id)
		if err != nil {
			t.Fatal(err)
		}
		return st.State == jobproto.StateExited
	})
	return st
}

func readLog(t *testing.T, c *agentclient.Client, id, stream string, offset int64, follow bool) string {
	t.Helper()
	rc, err := c.JobLogs(context.Background(), "i", id, stream, offset, follow)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	sort.Strings(l)
	return l
}

func TestJobRun(t *testing.T) {
	e := newJobEnv(t)
	a, c, _ := e.start(t)
	ctx := context.Background()
	wd := filepath.Join(e.root, "j1", "wd")
	spec := jobproto.Spec{ID: "j1", Outputs: []string{"model"}, Env: []string{"FOO=bar baz", "LANG=C"},
		Command: `echo out; echo err >&2; echo "$FOO|$(pwd)|$(id -u)|$(id -G)|$HOME|$USER|$LANG"
yes | head -1 >/dev/null # SIGPIPE is not ignored: yes ends quietly
mkdir outputs/model/sub; echo w > outputs/model/w.txt; printf x > outputs/model/sub/x
ln -s /etc/passwd outputs/model/link; ln -s /etc outputs/etc; mkfifo outputs/fifo
exit 3`}
	runJob(t, c, spec)
	st := waitExited(t, c, "j1")
	if st.ExitCode == nil || *st.ExitCode != 3 || st.Canceled || st.TimedOut || st.Error != "" {
		t.Errorf("status %+v; want exit code 3, not canceled", st)
	}
	if st.StartedAt.IsZero() || st.EndedAt.Before(st.StartedAt) {
		t.Errorf("times %v .. %v", st.StartedAt, st.EndedAt)
	}
	stdout := readLog(t, c, "j1", "stdout", 0, false)
	wantOut := "out\nbar baz|" + wd + "|4242|4242 4343|" + e.home + "|jobuser|C\n"
	if stdout != wantOut {
		t.Errorf("stdout %q; want %q", stdout, wantOut)
	}
	if got := readLog(t, c, "j1", "stderr", 0, false); got != "err\n" {
		t.Errorf("stderr %q; want %q", got, "err\n")
	}
	all := readLog(t, c, "j1", "std_log", 0, false)
	if got, want := sortedLines(all), sortedLines(stdout+"err\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("std_log %q; want the lines of stdout and stderr", all)
	}
	if st.StdoutBytes != int64(len(stdout)) || st.StderrBytes != 4 || st.LogBytes != int64(len(all)) {
		t.Errorf("sizes %d %d %d; want %d 4 %d", st.StdoutBytes, st.StderrBytes, st.LogBytes, len(stdout), len(all))
	}
	if got := readLog(t, c, "j1", "stdout", 4, false); got != wantOut[4:] {
		t.Errorf("stdout from 4: %q; want %q", got, wantOut[4:])
	}
	if got := readLog(t, c, "j1", "stdout", 1<<40, false); got != "" {
		t.Errorf("stdout past its end: %q", got)
	}

	// Who owns what.
	for _, tc := range []struct {
		path string
		uid  uint32
		mode os.FileMode
	}{
		{filepath.Join(e.root, "j1"), 0, 0o755 | os.ModeDir},
		{wd, jobUID, 0o755 | os.ModeDir},
		{filepath.Join(wd, "outputs", "model"), jobUID, 0o755 | os.ModeDir},
		{filepath.Join(e.root, "j1", "logs"), 0, 0o755 | os.ModeDir},
		{filepath.Join(e.root, "j1", "logs", "std_log.txt"), 0, 0o644},
		{filepath.Join(e.root, "j1", "spec.json"), 0, 0o600},
		{filepath.Join(e.root, "j1", "status.json"), 0, 0o644},
	} {
		fi, err := os.Lstat(tc.path)
		if err != nil {
			t.Error(err)
			continue
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != tc.uid || fi.Mode() != tc.mode {
			t.Errorf("%s: uid %d mode %v; want %d %v", tc.path, uid, fi.Mode(), tc.uid, tc.mode)
		}
	}

	// Outputs: files and directories, never a link or a fifo.
	rc, err := c.JobOutputs(ctx, "i", "j1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	rc.Close()
	want := map[string]string{"outputs/": "", "outputs/model/": "", "outputs/model/sub/": "", "outputs/model/sub/x": "x", "outputs/model/w.txt": "w\n"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outputs %v; want %v", got, want)
	}

	// PUT again: the same spec is the same job; another is refused.
	if st, err := c.PutJob(ctx, "i", spec); err != nil || st.State != jobproto.StateExited {
		t.Errorf("PUT again: %+v, %v; want the exited job", st, err)
	}
	other := spec
	other.Command = "true"
	if _, err := c.PutJob(ctx, "i", other); err == nil {
		t.Error("PUT with another spec: accepted")
	}
	a.act.mu.Lock()
	kind := a.act.kind
	a.act.mu.Unlock()
	if kind != "job" {
		t.Errorf("activity %q; want job", kind)
	}

	if err := c.DeleteJob(ctx, "i", "j1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(e.root, "j1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the job's directory after DELETE: %v", err)
	}
	if _, err := c.JobStatus(ctx, "i", "j1"); !chub.IsNotFound(err) {
		t.Errorf("status after DELETE: %v; want not found", err)
	}
}

func TestJobSpecRefused(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	for _, tc := range []struct {
		name string
		spec jobproto.Spec
	}{
		{"empty command", jobproto.Spec{ID: "x", Command: " "}},
		{"NUL in command", jobproto.Spec{ID: "x", Command: "a\x00b"}},
		{"bad env", jobproto.Spec{ID: "x", Command: "true", Env: []string{"=x"}}},
		{"env without =", jobproto.Spec{ID: "x", Command: "true", Env: []string{"X"}}},
		{"bad output", jobproto.Spec{ID: "x", Command: "true", Outputs: []string{"../up"}}},
		{"output twice", jobproto.Spec{ID: "x", Command: "true", Outputs: []string{"a", "a"}}},
		{"unknown user", jobproto.Spec{ID: "x", Command: "true", User: "nobody-here"}},
		{"negative timeout", jobproto.Spec{ID: "x", Command: "true", Timeout: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.PutJob(context.Background(), "i", tc.spec); err == nil {
				t.Errorf("PUT %+v: accepted", tc.spec)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(e.root, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused job left its directory: %v", err)
	}
}

func TestJobLogFollow(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	runJob(t, c, jobproto.Spec{ID: "f1", Command: `for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done`})
	// Follow from the start: everything, and the stream ends when the job does.
	got := readLog(t, c, "f1", "stdout", 0, true)
	if want := "line1\nline2\nline3\nline4\nline5\n"; got != want {
		t.Errorf("followed stdout %q; want %q", got, want)
	}
	st, err := c.JobStatus(context.Background(), "i", "f1")
	if err != nil || st.State != jobproto.StateExited {
		t.Errorf("after the followed log ended: %+v, %v; want exited", st, err)
	}
	if got := readLog(t, c, "f1", "std_log", 6, true); got != "line2\nline3\nline4\nline5\n" {
		t.Errorf("followed from offset 6 of an exited job: %q", got)
	}

	// A job quiet for longer than the client waits for a header: the
	// header comes at once, the bytes when they are written.
	runJob(t, c, jobproto.Spec{ID: "quiet", Command: "sleep 2; echo late"})
	impatient := *c
	impatient.CallTimeout = 500 * time.Millisecond
	if got := readLog(t, &impatient, "quiet", "stdout", 0, true); got != "late\n" {
		t.Errorf("followed log of a quiet job: %q; want %q", got, "late\n")
	}
}

// procAlive reports whether pid is a live process (not gone, not a zombie).
func procAlive(pid int) bool {
	p, err := readProcStat(pid)
	return err == nil && p.state != 'Z'
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitUntil(t, 10*time.Second, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

func TestJobCancelTree(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	ctx := context.Background()
	// A grandchild in a session of its own whose parent exited (double
	// fork), and one that ignores SIGTERM.
	runJob(t, c, jobproto.Spec{ID: "a", Command: `(setsid sh -c 'sleep 1000 & echo $! > gc.tmp; mv gc.tmp gc.pid; wait' &)
sh -c 'trap "" TERM; echo $$ > stubborn.tmp; mv stubborn.tmp stubborn.pid; exec sleep 1000' &
sleep 1000`})
	held := runJob(t, c, jobproto.Spec{ID: "b", Command: `echo $$ > b.pid; sleep 1000`})
	// A process of the instance that is no job's (a terminal's, say).
	bystander := exec.Command("sleep", "1000")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { bystander.Process.Kill(); bystander.Wait() }()

	gc := readPid(t, filepath.Join(e.root, "a", "wd", "gc.pid"))
	stubborn := readPid(t, filepath.Join(e.root, "a", "wd", "stubborn.pid"))
	bpid := readPid(t, filepath.Join(e.root, "b", "wd", "b.pid"))
	if !procAlive(gc) || !procAlive(stubborn) {
		t.Fatalf("the job's processes %d, %d are not running", gc, stubborn)
	}
	st, err := c.CancelJob(ctx, "i", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Canceled {
		t.Errorf("cancel answered %+v; want canceled", st)
	}
	st = waitExited(t, c, "a")
	if !st.Canceled || st.TimedOut || st.ExitCode == nil || *st.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("canceled job: %+v; want canceled, exit code 143", st)
	}
	for name, pid := range map[string]int{"grandchild": gc, "SIGTERM-ignoring": stubborn} {
		if procAlive(pid) {
			t.Errorf("the %s process %d outlived its canceled job", name, pid)
		}
	}
	// Nothing else was touched.
	if !procAlive(bpid) || !procAlive(held.PID) || !procAlive(bystander.Process.Pid) {
		t.Errorf("cancel of a ended others: job b %v (supervisor %v), bystander %v", procAlive(bpid), procAlive(held.PID), procAlive(bystander.Process.Pid))
	}
	if st, err := c.JobStatus(ctx, "i", "b"); err != nil || st.State != jobproto.StateRunning {
		t.Errorf("job b after a's cancel: %+v, %v; want running", st, err)
	}
	// Deleting a running job ends it first.
	if err := c.DeleteJob(ctx, "i", "b"); err != nil {
		t.Fatal(err)
	}
	if procAlive(bpid) || procAlive(held.PID) {
		t.Errorf("job b's processes outlived its DELETE")
	}
}

func TestJobCommandEndsItsProcesses(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	runJob(t, c, jobproto.Spec{ID: "bg", Command: `(setsid sleep 1000 & echo $! > bg.pid); sleep 0.2; echo done`})
	st := waitExited(t, c, "bg")
	if st.ExitCode == nil || *st.ExitCode != 0 || st.Canceled {
		t.Errorf("status %+v; want exit code 0", st)
	}
	pid := readPid(t, filepath.Join(e.root, "bg", "wd", "bg.pid"))
	if procAlive(pid) {
		t.Errorf("the background process %d outlived its job", pid)
	}
}

func TestJobTimeout(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	runJob(t, c, jobproto.Spec{ID: "t1", Command: "sleep 1000", Timeout: 300 * time.Millisecond})
	st := waitExited(t, c, "t1")
	if !st.TimedOut || st.Canceled || st.ExitCode == nil || *st.ExitCode != 143 || !strings.Contains(st.Error, "time-out") {
		t.Errorf("status %+v; want timed out, exit code 143", st)
	}
}

func TestJobCancelHeld(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	ctx := context.Background()
	for _, id := range []string{"h1", "c1"} {
		if _, err := c.PutJob(ctx, "i", jobproto.Spec{ID: id, Command: "touch ran"}); err != nil {
			t.Fatal(err)
		}
	}
	held, err := c.StartJob(ctx, "i", "h1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GoJob(ctx, "i", "c1"); err == nil {
		t.Error("go of a job not started: accepted")
	}
	for _, id := range []string{"h1", "c1"} {
		if _, err := c.CancelJob(ctx, "i", id); err != nil {
			t.Fatal(err)
		}
		st := waitExited(t, c, id)
		if !st.Canceled || st.ExitCode != nil || st.Error == "" {
			t.Errorf("%s: %+v; want canceled without an exit code", id, st)
		}
		if _, err := os.Lstat(filepath.Join(e.root, id, "wd", "ran")); err == nil {
			t.Errorf("%s: the command ran", id)
		}
	}
	if procAlive(held.PID) {
		t.Errorf("the supervisor %d of a canceled held job is running", held.PID)
	}
	if _, err := c.StartJob(ctx, "i", "c1"); err != nil {
		t.Errorf("start of an exited job: %v; want its status", err)
	}
	if st, _ := c.JobStatus(ctx, "i", "c1"); st.State != jobproto.StateExited {
		t.Errorf("after start of a canceled job: %s; want exited", st.State)
	}
}

func TestJobRestart(t *testing.T) {
	e := newJobEnv(t)
	_, c, stop := e.start(t)
	ctx := context.Background()
	runJob(t, c, jobproto.Spec{ID: "done", Command: "echo hi; exit 7"})
	waitExited(t, c, "done")
	runJob(t, c, jobproto.Spec{ID: "long", Command: "echo $$ > pid; sleep 1000"})
	pid := readPid(t, filepath.Join(e.root, "long", "wd", "pid"))
	if _, err := c.PutJob(ctx, "i", jobproto.Spec{ID: "fresh", Command: "true"}); err != nil {
		t.Fatal(err)
	}
	stop()
	if procAlive(pid) {
		t.Fatalf("the job's process %d outlived the agent", pid)
	}
	// Junk an instance's root may leave: ignored.
	os.MkdirAll(filepath.Join(e.root, "junk"), 0o755)
	os.WriteFile(filepath.Join(e.root, "junk", "status.json"), []byte("{not json"), 0o644)
	os.MkdirAll(filepath.Join(e.root, "linked"), 0o755)
	os.WriteFile(filepath.Join(e.root, "elsewhere.json"), []byte(`{"id":"linked","state":"exited"}`), 0o644)
	os.Symlink(filepath.Join(e.root, "elsewhere.json"), filepath.Join(e.root, "linked", "status.json"))
	os.Symlink(filepath.Join(e.root, "done"), filepath.Join(e.root, "alias"))
	os.MkdirAll(filepath.Join(e.root, "usersown"), 0o755)
	os.WriteFile(filepath.Join(e.root, "usersown", "status.json"), []byte(`{"id":"usersown","state":"exited"}`), 0o644)
	os.Chown(filepath.Join(e.root, "usersown", "status.json"), jobUID, jobUID)

	_, c2, _ := e.start(t)
	list, err := c2.ListJobs(ctx, "i")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]jobproto.Status{}
	for _, s := range list {
		got[s.ID] = s
	}
	if len(got) != 3 {
		t.Errorf("jobs after restart: %+v; want done, long, fresh", list)
	}
	if s := got["done"]; s.State != jobproto.StateExited || s.ExitCode == nil || *s.ExitCode != 7 || s.StdoutBytes != 3 {
		t.Errorf("done after restart: %+v; want exited with 7 and its log", s)
	}
	if s := got["long"]; s.State != jobproto.StateExited || s.Canceled || s.Error != errInstanceStopped || s.ExitCode == nil {
		t.Errorf("long after restart: %+v; want exited, not canceled, error %q", s, errInstanceStopped)
	}
	if s := got["fresh"]; s.State != jobproto.StateExited || s.Error == "" {
		t.Errorf("fresh after restart: %+v; want exited with an error", s)
	}
	if got := readLog(t, c2, "done", "stdout", 0, true); got != "hi\n" {
		t.Errorf("done's log after restart: %q", got)
	}
}

// TestJobActivity: a running job is activity again and again, an exited
// one no more.
func TestJobActivity(t *testing.T) {
	defer func(d time.Duration) { jobActivityEvery = d }(jobActivityEvery)
	jobActivityEvery = 50 * time.Millisecond
	e := newJobEnv(t)
	a, c, _ := e.start(t)
	setKind := func(k string) {
		a.act.mu.Lock()
		a.act.kind = k
		a.act.mu.Unlock()
	}
	kind := func() string {
		a.act.mu.Lock()
		defer a.act.mu.Unlock()
		return a.act.kind
	}
	runJob(t, c, jobproto.Spec{ID: "busy", Command: "sleep 1000"})
	for i := 0; i < 3; i++ {
		setKind("terminal")
		waitUntil(t, 5*time.Second, "activity job while the job runs", func() bool { return kind() == "job" })
	}
	if err := c.DeleteJob(context.Background(), "i", "busy"); err != nil {
		t.Fatal(err)
	}
	setKind("terminal")
	time.Sleep(10 * jobActivityEvery)
	if k := kind(); k != "terminal" {
		t.Errorf("activity after the job ended: %q; want none of the job's (terminal)", k)
	}
}

// tarOf builds a tar of entries (gzip'd when zip).
func tarOf(t *testing.T, zip bool, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if zip {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, h := range entries {
		h := h
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
			h.Linkname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// file is a regular file entry (its content in Linkname, for tarOf).
func file(name, content string, mode int64) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: content, Mode: mode}
}

func TestJobCode(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	ctx := context.Background()
	if _, err := c.PutJob(ctx, "i", jobproto.Spec{ID: "code", Command: "cat src/main.py; ls -l run.sh | cut -c1-10; readlink latest"}); err != nil {
		t.Fatal(err)
	}
	code := tarOf(t, true,
		tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeDir, Name: "src/", Mode: 0o750},
		file("src/main.py", "print('hi')\n", 0o644),
		file("run.sh", "#!/bin/sh\n", 0o4755), // no set-id bit survives
		file("deep/er/file", "x", 0o600),
		tar.Header{Typeflag: tar.TypeSymlink, Name: "latest", Linkname: "src/main.py"},
	)
	if err := c.PutJobCode(ctx, "i", "code", bytes.NewReader(code)); err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(e.root, "code", "wd")
	for _, p := range []string{"src", "src/main.py", "run.sh", "deep", "deep/er", "deep/er/file", "latest"} {
		fi, err := os.Lstat(filepath.Join(wd, p))
		if err != nil {
			t.Error(err)
			continue
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != jobUID {
			t.Errorf("%s: owned by %d; want %d", p, uid, jobUID)
		}
	}
	if fi, _ := os.Lstat(filepath.Join(wd, "run.sh")); fi.Mode() != 0o755 {
		t.Errorf("run.sh: mode %v; want -rwxr-xr-x", fi.Mode())
	}
	runJob(t, c, jobproto.Spec{ID: "code", Command: "cat src/main.py; ls -l run.sh | cut -c1-10; readlink latest"})
	waitExited(t, c, "code")
	if got, want := readLog(t, c, "code", "stdout", 0, false), "print('hi')\n-rwxr-xr-x\nsrc/main.py\n"; got != want {
		t.Errorf("the job saw %q; want %q", got, want)
	}
	if err := c.PutJobCode(ctx, "i", "code", bytes.NewReader(code)); err == nil {
		t.Error("code put into a started job: accepted")
	}
}

// TestJobCodeHoles: an archive cannot write outside the working directory,
// through a link its user planted or through one of its own.
func TestJobCodeHoles(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	ctx := context.Background()
	outside := t.TempDir()
	tests := []struct {
		name  string
		plant func(wd string)
		tar   []byte
	}{
		{"planted link to a directory", func(wd string) { os.Symlink(outside, filepath.Join(wd, "evil")) },
			tarOf(t, false, file("evil/file", "pwned", 0o644))},
		{"planted link as a directory entry", func(wd string) { os.Symlink(outside, filepath.Join(wd, "evil")) },
			tarOf(t, false, tar.Header{Typeflag: tar.TypeDir, Name: "evil/", Mode: 0o777}, file("evil/file", "pwned", 0o644))},
		{"planted deeper link", func(wd string) {
			os.MkdirAll(filepath.Join(wd, "a"), 0o755)
			os.Symlink(outside, filepath.Join(wd, "a", "b"))
		}, tarOf(t, true, file("a/b/c/file", "pwned", 0o644))},
		{"archive's own link", nil, tarOf(t, false,
			tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: outside}, file("link/file", "pwned", 0o644))},
		{"dot-dot", nil, tarOf(t, false, file("../../../"+filepath.Base(outside)+"/file", "pwned", 0o644))},
		{"absolute", nil, tarOf(t, false, file(outside+"/file", "pwned", 0o644))},
		{"hard link", nil, tarOf(t, false, tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "/etc/passwd"})},
		{"device", nil, tarOf(t, false, tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3})},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "hole" + strconv.Itoa(i)
			if _, err := c.PutJob(ctx, "i", jobproto.Spec{ID: id, Command: "true"}); err != nil {
				t.Fatal(err)
			}
			wd := filepath.Join(e.root, id, "wd")
			if tt.plant != nil {
				tt.plant(wd)
			}
			if err := c.PutJobCode(ctx, "i", id, bytes.NewReader(tt.tar)); err == nil || !strings.Contains(err.Error(), "400") {
				t.Errorf("extracting: %v; want a 400", err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 0 {
				t.Errorf("written outside the working directory: %v", ents)
			}
			if _, err := os.Lstat(filepath.Join(wd, "hl")); err == nil {
				t.Error("a hard link was made")
			}
		})
	}
}

// TestJobOutputsAndDeleteFollowNoLink: a job whose user put a link in
// place of its outputs folder keeps nothing, and DELETE removes links, not
// what they point to.
func TestJobOutputsAndDeleteFollowNoLink(t *testing.T) {
	e := newJobEnv(t)
	_, c, _ := e.start(t)
	ctx := context.Background()
	keep := t.TempDir()
	os.WriteFile(filepath.Join(keep, "precious"), []byte("x"), 0o644)
	runJob(t, c, jobproto.Spec{ID: "swap", Command: "rm -rf outputs; ln -s " + keep + " outputs; ln -s " + keep + " other"})
	waitExited(t, c, "swap")
	rc, err := c.JobOutputs(ctx, "i", "swap")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		names = append(names, h.Name)
	}
	rc.Close()
	if fmt.Sprint(names) != "[outputs/]" {
		t.Errorf("outputs through a link: %v; want only outputs/", names)
	}
	if err := c.DeleteJob(ctx, "i", "swap"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(keep, "precious")); err != nil {
		t.Errorf("DELETE followed a link: %v", err)
	}
}

// FuzzParseProcStat: any stat line parses or fails, without panicking.
func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("123 (sleep) S 1 123 123 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 5000 1000 100"))
	f.Add([]byte("5 (a) b) c) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseProcStat(7, b)
		if err == nil && p.pid != 7 {
			t.Fatalf("pid %d", p.pid)
		}
	})
}
