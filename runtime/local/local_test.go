package local_test

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	chub "github.com/computehub/chub"
	"github.com/computehub/chub/runtime/local"
	"github.com/computehub/chub/runtime/runtimetest"
)

func TestMain(m *testing.M) {
	// libcontainer re-executes this test binary as "init" to start containers.
	local.MaybeInit()
	os.Exit(m.Run())
}

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// agentBinary builds the test agent once per test binary; CHUB_TEST_AGENT
// names a ready one instead.
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
		cmd := exec.Command("go", "build", "-o", agentBin, "./internal/testagent")
		cmd.Stderr = os.Stderr
		agentErr = cmd.Run()
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
