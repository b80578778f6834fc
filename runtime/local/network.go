package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Outbound network: an instance with chub.InstanceSpec.OutboundNetwork gets
// a tap interface in its network namespace, served by pasta (from passt), a
// user-mode network stack on the host that turns the instance's packets
// into ordinary sockets of the host. Nothing changes on the host's
// interfaces and no host port is opened for the instance (every port
// forwarding of pasta is off). Of the host's loopback, reached through
// 10.0.2.2, the instance reaches only Config.HostPorts (see hostfilter.go).
//
// pasta runs in its own session, outside the server's process group, so it
// outlives a server restart the way the instance's init does. The server
// that started it reaps it; after a restart the orphan belongs to the
// host's init (or the nearest subreaper). It is found again through its pid
// file, checked against its command line, and killed when the instance
// stops or is deleted, or when a new runtime finds it next to a stopped
// instance.
const (
	// InstanceAddress is the instance's IPv4 address on its tap interface.
	InstanceAddress = "10.0.2.15"
	// HostLoopbackAddress is where an instance reaches the host's
	// 127.0.0.1: a connection to 10.0.2.2:PORT arrives at 127.0.0.1:PORT
	// on the host when PORT is one of Config.HostPorts, and is refused
	// otherwise. It is also the instance's default gateway.
	HostLoopbackAddress = "10.0.2.2"
	// DNSAddress is the resolver in /etc/resolv.conf: pasta forwards it to
	// the host's first nameserver.
	DNSAddress = "10.0.2.3"

	pastaBinary  = "pasta"
	pastaPIDFile = "pasta.pid"   // in the instance directory: pasta's pid, once it is ready
	pastaLog     = "pasta.log"   // in the instance directory: pasta's stderr
	resolvConf   = "resolv.conf" // in the instance directory: bind-mounted at /etc/resolv.conf
	netTimeout   = 5 * time.Second
)

// pastaArgs is pasta's command line for the network namespace at nsPath.
func pastaArgs(nsPath, pidFile string) []string {
	return []string{
		"--foreground", "--quiet",
		// Debian 12's pasta cannot join a namespace of the initial user
		// namespace once it has dropped to "nobody"; as uid 0 it keeps
		// only CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN, with no_new_privs,
		// a seccomp filter and an empty mount namespace of its own.
		"--runas", "0",
		"--netns", nsPath, "--no-netns-quit",
		"--config-net", "--ipv4-only",
		"--address", InstanceAddress, "--netmask", "24", "--gateway", HostLoopbackAddress,
		"--dns-forward", DNSAddress,
		// No port of the host is opened for the instance, and no port of
		// the host is shadowed on the instance's loopback.
		"--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",
		"--pid", pidFile,
	}
}

// networkAvailable says why this host cannot give instances outbound
// network, or nil.
func networkAvailable() error {
	if _, err := exec.LookPath(pastaBinary); err != nil {
		return errors.New("pasta is not installed (Debian package passt): install it, or create instances with outboundNetworkAccess Disabled")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return errors.New("/dev/net/tun is missing: load the tun module, or create instances with outboundNetworkAccess Disabled")
	}
	return nil
}

// startNetwork starts pasta for the network namespace of the process pid
// (the instance's init) and returns a function that waits until the
// instance's interface is configured. Call stopNetwork to undo it.
func (r *Runtime) startNetwork(id string, pid int) (wait func() error, err error) {
	if err := networkAvailable(); err != nil {
		return nil, err
	}
	dir := r.instDir(id)
	r.stopNetwork(id) // a pasta of a previous run, if any
	pidFile := filepath.Join(dir, pastaPIDFile)
	os.Remove(pidFile)
	// pasta lacks the capabilities to open another process's
	// /proc/PID/ns/net; it is handed an open descriptor instead.
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("open the instance's network namespace: %w", err)
	}
	defer ns.Close()
	logf, err := os.OpenFile(filepath.Join(dir, pastaLog), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// pasta starts inside the cgroup that limits what it connects to on
	// the host's loopback.
	cg, err := prepareHostFilter(id, r.hostPorts())
	if err != nil {
		return nil, err
	}
	defer cg.Close()
	cmd := exec.Command(pastaBinary, pastaArgs("/proc/self/fd/3", pidFile)...)
	cmd.ExtraFiles = []*os.File{ns}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pasta: %w", err)
	}
	exited := make(chan struct{})
	// The process that starts pasta reaps it.
	go func() { cmd.Wait(); close(exited) }()
	return func() error {
		deadline := time.Now().Add(netTimeout)
		delay := time.Millisecond
		for {
			// pasta writes its pid file once the interface is configured.
			if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
				return nil
			}
			select {
			case <-exited:
				log, _ := os.ReadFile(filepath.Join(dir, pastaLog))
				return fmt.Errorf("pasta exited: %s", strings.TrimSpace(lastLines(string(log), 5)))
			case <-time.After(delay):
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				return fmt.Errorf("pasta did not configure the network within %v", netTimeout)
			}
			delay = min(delay*2, 10*time.Millisecond)
		}
	}, nil
}

// networkPID returns the pid of the instance's running pasta, or 0. The pid
// file is trusted only when that process's command line names the file, so
// a reused pid is never taken for it.
func (r *Runtime) networkPID(id string) int {
	pidFile := filepath.Join(r.instDir(id), pastaPIDFile)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !isPasta(pid, pidFile) {
		return 0
	}
	return pid
}

// isPasta says whether pid is a live (not zombie) pasta with pidFile.
func isPasta(pid int, pidFile string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("\x00"+pidFile+"\x00")) {
		return false
	}
	return !zombie(pid)
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// stopNetwork kills the instance's pasta, if it runs, and waits until it is
// gone.
func (r *Runtime) stopNetwork(id string) {
	pidFile := filepath.Join(r.instDir(id), pastaPIDFile)
	if pid := r.networkPID(id); pid > 0 {
		unix.Kill(pid, unix.SIGKILL)
		deadline := time.Now().Add(2 * time.Second)
		for isPasta(pid, pidFile) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		r.log.Info("instance network stopped", "id", id, "pid", pid)
	}
	os.Remove(pidFile)
	removeHostFilter(id)
}

// filtered says whether pid (the instance's pasta) runs in the cgroup of
// the host loopback filter; a pasta of a server before the filter does not.
func filtered(id string, pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "0::") {
			return strings.TrimPrefix(line, "0::") == "/"+hostFilterCgroup+"/"+id
		}
	}
	return false
}

// writeResolvConf writes the resolv.conf bind-mounted into an instance with
// outbound network.
func writeResolvConf(dir string) error {
	return os.WriteFile(filepath.Join(dir, resolvConf), []byte("# Written by ComputeHub at every start: the user-mode network's resolver.\nnameserver "+DNSAddress+"\n"), 0o644)
}

// runNetwork starts the network of a running instance and waits for it.
func (r *Runtime) runNetwork(id string, pid int) error {
	wait, err := r.startNetwork(id, pid)
	if err != nil {
		return err
	}
	return wait()
}

// recoverNetworks kills the pasta of every instance whose container no
// longer runs (a server that died while stopping one leaves it behind), and
// starts it again for a running instance with outbound network that lacks
// one (a server that died while starting it, or a pasta that crashed).
func (r *Runtime) recoverNetworks() {
	dirs, _ := filepath.Glob(filepath.Join(r.cfg.Root, "instances", "*"))
	for _, dir := range dirs {
		id := filepath.Base(dir)
		if validID(id) != nil {
			continue
		}
		_, err := os.Stat(filepath.Join(dir, resolvConf))
		wanted := err == nil
		running := 0
		if c, err := libcontainer.Load(stateDir(r.cfg.Root), id); err == nil {
			if st, err := c.Status(); err == nil && st == libcontainer.Running {
				if state, err := c.State(); err == nil {
					running = state.InitProcessPid
				}
			}
		}
		switch {
		case running == 0:
			if _, err := os.Stat(filepath.Join(dir, pastaPIDFile)); err == nil {
				r.stopNetwork(id)
			}
		case wanted && (r.networkPID(id) == 0 || !filtered(id, r.networkPID(id))):
			r.log.Info("restarting the network of a running instance", "id", id)
			if err := r.runNetwork(id, running); err != nil {
				r.log.Warn("restart the network of a running instance", "id", id, "err", err)
			}
		case wanted:
			// The ports this server opens, which may differ from the
			// previous server's.
			if cg, err := prepareHostFilter(id, r.hostPorts()); err != nil {
				r.log.Warn("update the host loopback filter of a running instance", "id", id, "err", err)
			} else {
				cg.Close()
			}
		}
	}
}
