// Package local provides the local runtime: every instance is a container
// on this host (embedded libcontainer), with an overlay disk over a shared
// read-only image and the chub agent as its PID 1.
package local

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of "chub init"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"

	_ "github.com/opencontainers/cgroups/devices" // device rules for the fs cgroup manager

	chub "github.com/computehub/chub"
)

// MaybeInit runs libcontainer's container init, and never returns, when the
// process was started as "<binary> init" (libcontainer re-executes the
// binary that way to start a container); otherwise it returns at once. Call
// it first thing in main.
func MaybeInit() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
		os.Exit(255) // not reached: Init execs the container's process or exits
	}
}

// Config configures the local runtime.
type Config struct {
	// Root holds everything the runtime keeps: container state, images and
	// instance disks (e.g. <data-dir>/runtime/local).
	Root string
	// AgentBinary is the chub binary bind-mounted read-only into every
	// instance as its init; default os.Executable().
	AgentBinary string
	// DefaultImage is the image of specs that name none; default "host".
	DefaultImage string
	// CPUOvercommit is how many instance CPUs one host core may back
	// (for CheckSize); default 4.
	CPUOvercommit float64
	// HostPorts are the ports of the host's loopback (127.0.0.1) that
	// instances with outbound network reach through 10.0.2.2: the API's
	// and those the admin opens. Every other loopback port is refused.
	HostPorts []uint16
	// Logger receives the runtime's log; default discards it.
	Logger *slog.Logger
}

// HostImage is the name of the image built from the host's own /usr.
const HostImage = "host"

// Runtime runs instances as local containers. It implements chub.Runtime.
type Runtime struct {
	cfg Config
	log *slog.Logger

	// mu guards locks.
	mu    sync.Mutex
	locks map[string]*sync.Mutex // per instance id: serializes lifecycle calls

	imageMu sync.Mutex // serializes image builds and imports in this process
}

var _ chub.Runtime = (*Runtime)(nil)

// New returns a runtime keeping its state under cfg.Root, after checking
// that this host can run containers. It cleans what a runtime killed
// mid-way left behind (mounts of stopped instances, half-built images).
func New(cfg Config) (*Runtime, error) {
	if cfg.Root == "" {
		return nil, errors.New("local runtime: Config.Root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, err
	}
	cfg.Root = root
	if cfg.AgentBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("local runtime: find the agent binary: %w", err)
		}
		cfg.AgentBinary = exe
	}
	if cfg.DefaultImage == "" {
		cfg.DefaultImage = HostImage
	}
	if cfg.CPUOvercommit <= 0 {
		cfg.CPUOvercommit = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := checkHost(cfg); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, stateDir(cfg.Root), filepath.Join(cfg.Root, "instances"), filepath.Join(cfg.Root, "images")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("local runtime: %w", err)
		}
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, locks: make(map[string]*sync.Mutex)}
	if !seccomp.Enabled {
		r.log.Error("this chub binary was built without seccomp support: instances run WITHOUT a seccomp filter; build it with `make build` (CGO_ENABLED=1 go build -tags seccomp, with libseccomp-dev installed)")
	}
	r.recover()
	return r, nil
}

// Name is "local".
func (r *Runtime) Name() string { return "local" }

// checkHost says what this host lacks to run instances, and what to do.
func checkHost(cfg Config) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "it must run as root (containers need namespaces, cgroups and mounts): run the server as root")
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !cgroupAvailable(c) {
			missing = append(missing, fmt.Sprintf("the %s cgroup controller is not mounted (neither /sys/fs/cgroup/%s nor a cgroup v2 hierarchy offering it): mount cgroups or boot with them enabled", c, c))
		}
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		missing = append(missing, "the kernel has no overlay filesystem: load it with `modprobe overlay`")
	}
	if fi, err := os.Stat(cfg.AgentBinary); err != nil || fi.IsDir() {
		missing = append(missing, fmt.Sprintf("the agent binary %q does not exist: set Config.AgentBinary to the chub binary", cfg.AgentBinary))
	}
	if len(missing) > 0 {
		return fmt.Errorf("local runtime cannot work on this host: %s", strings.Join(missing, "; "))
	}
	return nil
}

func cgroupAvailable(controller string) bool {
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller, "tasks")); err == nil {
		return true
	}
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return false
	}
	for _, c := range strings.Fields(string(b)) {
		if c == controller {
			return true
		}
	}
	return false
}

// lock serializes lifecycle calls on one instance.
func (r *Runtime) lock(id string) func() {
	r.mu.Lock()
	l, ok := r.locks[id]
	if !ok {
		l = new(sync.Mutex)
		r.locks[id] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// recover undoes what a runtime stopped mid-way left: host mounts of
// instance root filesystems (a running instance has its own copy in its
// mount namespace, so the host's is always stale), temporary dirs, and
// the user-mode networks of instances that no longer run.
func (r *Runtime) recover() {
	for _, m := range mountsUnder(filepath.Join(r.cfg.Root, "instances")) {
		r.log.Info("unmounting stale instance mount", "path", m)
		unix.Unmount(m, unix.MNT_DETACH)
	}
	if ents, err := os.ReadDir(filepath.Join(r.cfg.Root, "instances")); err == nil {
		for _, e := range ents {
			if validID(e.Name()) == nil {
				removeRootfs(e.Name())
			}
		}
	}
	for _, dir := range []string{filepath.Join(r.cfg.Root, "instances"), filepath.Join(r.cfg.Root, "images")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
	r.recoverNetworks()
}

// validID rejects ids that could escape the runtime's directories.
func validID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "/\\\x00") || id == "." || id == ".." || strings.HasPrefix(id, ".") {
		return chub.Invalid("InvalidInstanceId", "id", "instance id %q is not usable as a name", id)
	}
	return nil
}
