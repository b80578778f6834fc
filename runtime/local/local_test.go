package local_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"

	chub "github.com/computehub/chub"
	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	// libcontainer re-executes this test binary as "init" to start containers.
	local.MaybeInit()
	if id := os.Getenv("CHUB_TEST_START_AND_DIE"); id != "" {
		startAndDie(id)
	}
	os.Exit(m.Run())
}

// startAndDie plays a server that starts an instance and is SIGKILLed.
func startAndDie(id string) {
	rt, err := local.New(local.Config{Root: imageRoot(), AgentBinary: os.Getenv("CHUB_TEST_AGENT")})
	if err == nil {
		err = rt.Start(context.Background(), chub.InstanceSpec{ID: id, Hostname: "survivor", MemoryBytes: 256 << 20, OutboundNetwork: os.Getenv("CHUB_TEST_NETWORK") != ""})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// An instance outlives the server that started it, and a new runtime
// takes it over and cleans it up.
func TestServerKilled(t *testing.T) {
	skipUnlessRoot(t)
	id := runtimetest.Spec(t).ID
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CHUB_TEST_START_AND_DIE="+id, "CHUB_TEST_AGENT="+agentBinary(t))
	// With outbound network when pasta is there: its helper outlives the
	// server too, and Destroy by a new runtime ends it.
	_, err := os.Stat("/usr/bin/pasta")
	network := err == nil
	if network {
		cmd.Env = append(cmd.Env, "CHUB_TEST_NETWORK=1")
	}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: %v: %s", err, out)
	}
	rt := newRuntime(t)
	ctx := context.Background()
	st, err := rt.Inspect(ctx, id)
	if err != nil || st.Phase != chub.PhaseRunning {
		t.Fatalf("Inspect after the server died = %+v, %v; want Running", st, err)
	}
	if got := runtimetest.Sh(t, rt, id, "", "hostname"); got != "survivor\n" {
		t.Errorf("hostname = %q", got)
	}
	if network && st.PrivateIP != local.InstanceAddress {
		t.Errorf("PrivateIP after the server died = %q; want %s", st.PrivateIP, local.InstanceAddress)
	}
	if err := rt.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, l := range runtimetest.HostTraces(id) {
		t.Errorf("after Destroy: %s", l)
	}
	if _, err := os.Stat(filepath.Join(imageRoot(), "instances", id)); !os.IsNotExist(err) {
		t.Errorf("the instance directory remains: %v", err)
	}
}

// A runtime killed between mounting a disk and starting its container
// leaves a mount on the host; a new runtime removes it.
func TestStaleMountRecovered(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	spec := runtimetest.Spec(t)
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer rt.Destroy(ctx, spec.ID)
	rootfs := filepath.Join(imageRoot(), "instances", spec.ID, "rootfs")
	if err := syscall.Mount("tmpfs", rootfs, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	newRuntime(t)
	if traces := runtimetest.HostTraces(spec.ID); len(traces) > 0 {
		t.Errorf("a new runtime left %v", traces)
	}
}

func TestCheckSize(t *testing.T) {
	rt := newRuntime(t)
	tests := []struct {
		name string
		spec chub.InstanceSpec
		ok   bool
	}{
		{"small", chub.InstanceSpec{ID: "x", CPUMillis: 1000, MemoryBytes: 1 << 30}, true},
		{"too much memory", chub.InstanceSpec{ID: "x", CPUMillis: 1000, MemoryBytes: 1 << 50}, false},
		{"too many cores", chub.InstanceSpec{ID: "x", CPUMillis: int64(runtime.NumCPU())*4000 + 1000, MemoryBytes: 1 << 20}, false},
		{"overcommitted cores", chub.InstanceSpec{ID: "x", CPUMillis: int64(runtime.NumCPU()) * 4000, MemoryBytes: 1 << 20}, true},
	}
	for _, tt := range tests {
		err := rt.CheckSize(tt.spec)
		if tt.ok != (err == nil) {
			t.Errorf("%s: CheckSize = %v; want ok=%v", tt.name, err, tt.ok)
		}
		var ce *chub.Error
		if err != nil && (!errors.As(err, &ce) || ce.Code != "VmSizeTooLargeForHost" || ce.Kind != chub.KindInvalid) {
			t.Errorf("%s: CheckSize = %#v; want a KindInvalid VmSizeTooLargeForHost", tt.name, err)
		}
	}
}

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// agentBinary builds the agent once per test binary: the real chub binary
// when cmd/chub compiles, else the stand-in internal/testagent.
// CHUB_TEST_AGENT names a ready binary instead.
func agentBinary(t testing.TB) string {
	t.Helper()
	agentOnce.Do(func() {
		if p := os.Getenv("CHUB_TEST_AGENT"); p != "" {
			agentBin = p
			return
		}
		dir, err := os.MkdirTemp("", "chub-testagent-")
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "chub")
		if out, err := exec.Command("go", "build", "-o", agentBin, "../../cmd/chub").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cmd/chub does not build; testing with internal/testagent: %v\n%s", err, out)
			cmd := exec.Command("go", "build", "-o", agentBin, "./internal/testagent")
			cmd.Stderr = os.Stderr
			agentErr = cmd.Run()
		}
	})
	if agentErr != nil {
		t.Fatalf("build the test agent: %v", agentErr)
	}
	return agentBin
}

// imageRoot is where tests keep their runtime root: shared by every test
// (and test run) so the host image is built once. CHUB_TEST_ROOT overrides.
func imageRoot() string {
	if p := os.Getenv("CHUB_TEST_ROOT"); p != "" {
		return p
	}
	return "/var/cache/chub-test/runtime"
}

func skipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 || runtime.GOOS != "linux" {
		t.Skip("the local runtime needs root on Linux")
	}
}

func newRuntime(t testing.TB) *local.Runtime {
	t.Helper()
	skipUnlessRoot(t)
	rt, err := local.New(local.Config{
		Root:        imageRoot(),
		AgentBinary: agentBinary(t),
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) chub.Runtime { return newRuntime(t) })
}

// azureuser has passwordless sudo when the host (so the host image) has sudo.
func TestSudo(t *testing.T) {
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		t.Skip("the host has no sudo (apt-get install sudo)")
	}
	rt := newRuntime(t)
	spec := runtimetest.Spec(t)
	runtimetest.Started(t, rt, spec)
	if got := runtimetest.Sh(t, rt, spec.ID, "", "sudo -n id -u"); got != "0\n" {
		t.Errorf("sudo id -u = %q; want 0", got)
	}
	// dpkg works as root inside, on the image's own database.
	runtimetest.Sh(t, rt, spec.ID, "root", "dpkg -s coreutils >/dev/null && useradd -m bob && id bob")
}
