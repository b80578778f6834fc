package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	chub "github.com/computehub/chub"
)

// The layout of an instance directory, <root>/instances/<id>.
const (
	instanceFile = "instance.json" // what the disk was made from
	upperDir     = "upper"         // the overlay's upper dir: everything written
	workDir      = "work"          // the overlay's work dir
	rootfsDir    = "rootfs"        // where the overlay is mounted while starting
	agentLog     = "agent.log"     // the container's stdout and stderr
	// agentSocket is the agent's listening socket. The server binds it
	// and hands the agent the listener (fd 3): it lies in the instance
	// directory, which is never mounted into the instance, so nothing
	// inside can replace it with a link elsewhere.
	agentSocket = "agent.sock"
	// legacyRunDir was bind-mounted at /run/chub and held the agent's
	// socket, which root inside could replace: removed at start.
	legacyRunDir = "run"
)

// Inside an instance.
const (
	agentPath    = "/.chub/chub"
	homeDir      = "/home/azureuser"
	azureUserID  = 1000
	agentTimeout = 10 * time.Second // how long Start waits for the agent
)

// disk is what instance.json records: the image layers the disk lies on.
type disk struct {
	ID        string    `json:"id"`
	Image     string    `json:"image"`
	Lower     []string  `json:"lower"` // overlay lowerdirs, top first
	CreatedAt time.Time `json:"createdAt"`
}

func stateDir(root string) string           { return filepath.Join(root, "state") }
func (r *Runtime) instDir(id string) string { return filepath.Join(r.cfg.Root, "instances", id) }

func (r *Runtime) readDisk(id string) (*disk, error) {
	b, err := os.ReadFile(filepath.Join(r.instDir(id), instanceFile))
	if err != nil {
		return nil, err
	}
	var d disk
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("instance %s: %s: %w", id, instanceFile, err)
	}
	return &d, nil
}

// Create prepares the instance's disk: an empty overlay upper dir over the
// image, with the user's home directory.
func (r *Runtime) Create(ctx context.Context, spec chub.InstanceSpec) error {
	if err := validID(spec.ID); err != nil {
		return err
	}
	defer r.lock(spec.ID)()
	return r.create(ctx, spec)
}

func (r *Runtime) create(ctx context.Context, spec chub.InstanceSpec) error {
	if _, err := os.Stat(filepath.Join(r.instDir(spec.ID), instanceFile)); err == nil {
		return nil
	}
	image := spec.Image
	if image == "" {
		image = r.cfg.DefaultImage
	}
	lower, err := r.imageLayers(ctx, image)
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.cfg.Root, "instances", ".tmp-"+spec.ID)
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	for _, d := range []string{upperDir, workDir, rootfsDir} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o700); err != nil {
			return fmt.Errorf("create instance %s: %w", spec.ID, err)
		}
	}
	// The upper dir's root is the instance's "/".
	if err := os.Chmod(filepath.Join(tmp, upperDir), 0o755); err != nil {
		return err
	}
	if err := prepareUpper(filepath.Join(tmp, upperDir), lower, spec.Hostname); err != nil {
		return fmt.Errorf("create instance %s: %w", spec.ID, err)
	}
	b, _ := json.MarshalIndent(disk{ID: spec.ID, Image: image, Lower: lower, CreatedAt: time.Now().UTC()}, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, instanceFile), b, 0o600); err != nil {
		return fmt.Errorf("create instance %s: %w", spec.ID, err)
	}
	if err := os.Rename(tmp, r.instDir(spec.ID)); err != nil {
		return fmt.Errorf("create instance %s: %w", spec.ID, err)
	}
	r.log.Info("instance disk created", "id", spec.ID, "image", image)
	return nil
}

// prepareUpper seeds a new upper dir: the home of azureuser (a copy of
// /etc/skel of the image) and the hostname files.
func prepareUpper(upper string, lower []string, hostname string) error {
	find := func(rel string) string {
		for _, l := range lower {
			p := filepath.Join(l, rel)
			if _, err := os.Lstat(p); err == nil {
				return p
			}
		}
		return ""
	}
	// Parents copy their mode from the image so the overlay shows the same.
	mkParents := func(rel string) error {
		parts := strings.Split(strings.Trim(filepath.Dir(rel), "/"), "/")
		cur := ""
		for _, p := range parts {
			if p == "" || p == "." {
				continue
			}
			cur = filepath.Join(cur, p)
			mode := os.FileMode(0o755)
			if src := find(cur); src != "" {
				if fi, err := os.Stat(src); err == nil {
					mode = fi.Mode().Perm()
				}
			}
			dst := filepath.Join(upper, cur)
			if err := os.Mkdir(dst, mode); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			os.Chmod(dst, mode)
		}
		return nil
	}
	if passwd := find("etc/passwd"); passwd != "" {
		if err := addAzureUser(upper, passwd, find("etc/group"), mkParents); err != nil {
			return err
		}
		if err := mkParents(homeDir); err != nil {
			return err
		}
		home := filepath.Join(upper, homeDir)
		if err := os.Mkdir(home, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if skel := find("etc/skel"); skel != "" {
			if err := copyTree(skel, home, azureUserID, azureUserID); err != nil {
				return fmt.Errorf("home directory: %w", err)
			}
		}
		if err := os.Lchown(home, azureUserID, azureUserID); err != nil {
			return err
		}
		if err := writeUserPipConfig(home); err != nil {
			return fmt.Errorf("pip configuration: %w", err)
		}
	}
	if hostname != "" {
		if err := mkParents("/etc/hostname"); err != nil {
			return err
		}
		os.WriteFile(filepath.Join(upper, "etc", "hostname"), []byte(hostname+"\n"), 0o644)
		hosts := "127.0.0.1\tlocalhost\n127.0.1.1\t" + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" +
			HostLoopbackAddress + "\t" + HostLoopbackName + "\n"
		os.WriteFile(filepath.Join(upper, "etc", "hosts"), []byte(hosts), 0o644)
	}
	return nil
}

// addAzureUser gives an image that lacks the user azureuser one, in the
// instance's own /etc/passwd and /etc/group.
func addAzureUser(upper, passwd, group string, mkParents func(string) error) error {
	b, err := os.ReadFile(passwd)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "azureuser:") {
			return nil
		}
	}
	if err := mkParents("/etc/passwd"); err != nil {
		return err
	}
	shell := "/bin/sh"
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(passwd)), "bin", "bash")); err == nil {
		shell = "/bin/bash"
	}
	add := func(dst, src, line string) error {
		old, _ := os.ReadFile(src)
		if len(old) > 0 && old[len(old)-1] != '\n' {
			old = append(old, '\n')
		}
		return os.WriteFile(dst, append(old, line+"\n"...), 0o644)
	}
	if err := add(filepath.Join(upper, "etc", "passwd"), passwd, "azureuser:x:1000:1000:Azure User:"+homeDir+":"+shell); err != nil {
		return err
	}
	return add(filepath.Join(upper, "etc", "group"), group, "azureuser:x:1000:")
}

// copyTree copies the files of src into dst (which exists), owned by uid:gid.
func copyTree(src, dst string, uid, gid int) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(target, fi.Mode().Perm()); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil
		}
		return os.Lchown(target, uid, gid)
	})
}

// Start runs the instance, creating its disk first if needed, and returns
// once its agent answers.
func (r *Runtime) Start(ctx context.Context, spec chub.InstanceSpec) error {
	if err := validID(spec.ID); err != nil {
		return err
	}
	if err := r.CheckSize(spec); err != nil {
		return err
	}
	defer r.lock(spec.ID)()
	if c, err := libcontainer.Load(stateDir(r.cfg.Root), spec.ID); err == nil {
		st, _ := c.Status()
		if st == libcontainer.Running && r.agentHealthy(ctx, spec.ID) == nil {
			// A server that died between starting the instance and its
			// network left it without one.
			if spec.OutboundNetwork && r.networkPID(spec.ID) == 0 {
				if state, err := c.State(); err == nil {
					if err := r.runNetwork(spec.ID, state.InitProcessPid); err != nil {
						return fmt.Errorf("start instance %s: %w", spec.ID, err)
					}
				}
			}
			return nil
		}
		// A crashed or half-started instance: clear it and start afresh.
		if err := r.stopContainer(c, 0); err != nil {
			r.log.Warn("instance: the previous run does not stop; clearing it by force", "id", spec.ID, "err", err)
		}
	}
	// Whatever a server killed mid-way left (a state dir without state,
	// processes in the cgroup, the cgroup, pasta) would make the new
	// container "already exist".
	if err := r.clearContainer(spec.ID); err != nil {
		return fmt.Errorf("start instance %s: clear the previous run: %w", spec.ID, err)
	}
	if err := r.create(ctx, spec); err != nil {
		return err
	}
	d, err := r.readDisk(spec.ID)
	if err != nil {
		return fmt.Errorf("start instance %s: %w", spec.ID, err)
	}
	if err := r.startContainer(ctx, spec, d); err != nil {
		return fmt.Errorf("start instance %s: %w", spec.ID, err)
	}
	return nil
}

func (r *Runtime) startContainer(ctx context.Context, spec chub.InstanceSpec, d *disk) (retErr error) {
	dir := r.instDir(spec.ID)
	rootfs := rootfsPath(spec.ID)
	os.RemoveAll(filepath.Join(dir, legacyRunDir))
	ln, err := listenAgent(dir)
	if err != nil {
		return fmt.Errorf("the agent's socket: %w", err)
	}
	defer ln.Close()
	if err := r.mountDisk(spec.ID, rootfs, d.Lower, filepath.Join(dir, upperDir), filepath.Join(dir, workDir)); err != nil {
		return err
	}
	// The container keeps its own copy of the mount; the host's goes.
	defer unix.Unmount(rootfs, unix.MNT_DETACH)

	// The resolver file also marks the instance as one with a network.
	if spec.OutboundNetwork {
		if err := writeResolvConf(dir); err != nil {
			return err
		}
	} else {
		os.Remove(filepath.Join(dir, resolvConf))
	}
	config, err := r.containerConfig(spec, dir)
	if err != nil {
		return err
	}
	c, err := libcontainer.Create(stateDir(r.cfg.Root), spec.ID, config)
	if err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	defer func() {
		if retErr != nil {
			r.stopContainer(c, 0)
		}
	}()
	logf, err := os.OpenFile(filepath.Join(dir, agentLog), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	p := &libcontainer.Process{
		Args:   []string{agentPath, "agent", "--listen-fd", "3"},
		Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "GOMAXPROCS=2", "GOGC=50"},
		Cwd:    "/",
		Stdout: logf,
		Stderr: logf,
		Init:   true,
		// fd 3: the listener of the agent's socket.
		ExtraFiles: []*os.File{ln},
	}
	if err := c.Run(p); err != nil {
		return fmt.Errorf("run the agent: %w (see %s)", err, filepath.Join(dir, agentLog))
	}
	// The init is a child of this process: reap it when it exits.
	go p.Wait()
	// The agent holds the listener now.
	ln.Close()
	// The network comes up while the agent starts.
	launched := time.Now()
	var waitNetwork func() error
	if spec.OutboundNetwork {
		pid, err := p.Pid()
		if err != nil {
			return err
		}
		if waitNetwork, err = r.startNetwork(spec.ID, pid); err != nil {
			return err
		}
	}
	if err := r.waitAgent(ctx, spec.ID, c); err != nil {
		return err
	}
	agentUp := time.Since(launched)
	if waitNetwork != nil {
		if err := waitNetwork(); err != nil {
			return err
		}
	}
	r.log.Info("instance started", "id", spec.ID, "agent", agentUp.Round(time.Millisecond),
		"network", spec.OutboundNetwork, "ready", time.Since(launched).Round(time.Millisecond))
	return nil
}

// waitAgent waits until the agent answers or the container dies.
func (r *Runtime) waitAgent(ctx context.Context, id string, c *libcontainer.Container) error {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	delay := time.Millisecond
	for {
		// The socket listens from the start: a connection waits in its
		// backlog until the agent serves.
		if err := r.agentHealthy(ctx, id); err == nil {
			return nil
		}
		if st, err := c.Status(); err != nil || st != libcontainer.Running {
			log, _ := os.ReadFile(filepath.Join(r.instDir(id), agentLog))
			return fmt.Errorf("the agent exited: %s", strings.TrimSpace(lastLines(string(log), 5)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agent did not answer within %v", agentTimeout)
		case <-time.After(delay):
		}
		delay = min(delay*2, 20*time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// agentHealthy asks the agent's /healthz.
func (r *Runtime) agentHealthy(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	client := http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return r.DialAgent(ctx, id) },
	}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://agent/healthz", nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent health: %s", resp.Status)
	}
	return nil
}

// Stop ends every process of the instance (SIGTERM to its agent, which
// passes it on, then SIGKILL after grace) and releases its cgroups.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	if err := validID(id); err != nil {
		return err
	}
	defer r.lock(id)()
	// No container libcontainer can load (none, or one a server killed
	// mid-create left): its leftovers go all the same.
	if c, err := libcontainer.Load(stateDir(r.cfg.Root), id); err == nil {
		if err := r.stopContainer(c, grace); err != nil {
			return fmt.Errorf("stop instance %s: %w", id, err)
		}
	}
	if err := r.clearContainer(id); err != nil {
		return fmt.Errorf("stop instance %s: %w", id, err)
	}
	r.log.Info("instance stopped", "id", id)
	return nil
}

// stopContainer kills the container, waits for it to be stopped and
// destroys it (its cgroups and state).
func (r *Runtime) stopContainer(c *libcontainer.Container, grace time.Duration) error {
	stopped := func() bool {
		st, err := c.Status()
		return err != nil || st == libcontainer.Stopped
	}
	thawJobs(c.ID()) // a frozen job's processes would keep the container from ending
	if !stopped() && grace > 0 {
		if err := c.Signal(unix.SIGTERM); err == nil {
			deadline := time.Now().Add(grace)
			for !stopped() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	if !stopped() {
		c.Signal(unix.SIGKILL)
		deadline := time.Now().Add(10 * time.Second)
		for !stopped() {
			if time.Now().After(deadline) {
				return errors.New("the container did not stop after SIGKILL")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = c.Destroy(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	unmountInstance(r.instDir(c.ID()))
	os.Remove(filepath.Join(r.instDir(c.ID()), agentSocket))
	r.stopNetwork(c.ID())
	return err
}

// Destroy stops the instance and removes its container and disk.
func (r *Runtime) Destroy(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	defer r.lock(id)()
	if c, err := libcontainer.Load(stateDir(r.cfg.Root), id); err == nil {
		if err := r.stopContainer(c, 0); err != nil {
			r.log.Warn("instance: the container does not stop; clearing it by force", "id", id, "err", err)
		}
	}
	// Also what libcontainer cannot load: a state dir a server killed
	// mid-create left without state, and its cgroup.
	if err := r.clearContainer(id); err != nil {
		return fmt.Errorf("destroy instance %s: %w", id, err)
	}
	dir := r.instDir(id)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("destroy instance %s: remove its disk: %w", id, err)
	}
	r.log.Info("instance destroyed", "id", id)
	return nil
}

// Inspect observes one instance.
func (r *Runtime) Inspect(ctx context.Context, id string) (chub.InstanceStatus, error) {
	if err := validID(id); err != nil {
		return chub.InstanceStatus{}, err
	}
	defer r.lock(id)()
	_, diskErr := os.Stat(filepath.Join(r.instDir(id), instanceFile))
	c, err := libcontainer.Load(stateDir(r.cfg.Root), id)
	if err != nil {
		if !errors.Is(err, libcontainer.ErrNotExist) {
			return chub.InstanceStatus{Phase: chub.PhaseFailed, Message: "unreadable container state: " + err.Error()}, nil
		}
		if diskErr != nil {
			return chub.InstanceStatus{Phase: chub.PhaseAbsent}, nil
		}
		return chub.InstanceStatus{Phase: chub.PhaseStopped}, nil
	}
	if diskErr != nil {
		return chub.InstanceStatus{Phase: chub.PhaseFailed, Message: "a container runs without a disk"}, nil
	}
	st, err := c.Status()
	if err != nil {
		return chub.InstanceStatus{Phase: chub.PhaseFailed, Message: err.Error()}, nil
	}
	state, _ := c.State()
	var started time.Time
	if state != nil {
		started = state.Created
	}
	switch st {
	case libcontainer.Running:
		if err := r.agentHealthy(ctx, id); err != nil {
			return chub.InstanceStatus{Phase: chub.PhaseFailed, Message: "the agent does not answer: " + err.Error(), StartedAt: started}, nil
		}
		var ip string
		if r.networkPID(id) > 0 {
			ip = InstanceAddress
		}
		return chub.InstanceStatus{Phase: chub.PhaseRunning, StartedAt: started, PrivateIP: ip}, nil
	case libcontainer.Stopped:
		return chub.InstanceStatus{Phase: chub.PhaseStopped, Message: "the instance's init exited on its own (see " + filepath.Join(r.instDir(id), agentLog) + ")"}, nil
	default:
		return chub.InstanceStatus{Phase: chub.PhaseFailed, Message: "container is " + st.String()}, nil
	}
}

// List returns the ids of every instance that has a disk or a container.
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	for _, dir := range []string{filepath.Join(r.cfg.Root, "instances"), stateDir(r.cfg.Root)} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				seen[e.Name()] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// clearContainer removes every trace of a container of id that is not
// running under libcontainer's control: it kills the processes left in
// its cgroups and removes them, its state dir, the host mounts of its
// instance directory and its network helper. Call it with the instance
// locked and no container of id running that should keep running.
func (r *Runtime) clearContainer(id string) error {
	var errs []error
	thawJobs(id)
	cgs := instanceCgroups(id)
	// The network helper's cgroup: a server killed while starting one
	// may leave a second pasta the pid file does not name.
	if dir, err := hostFilterDir(id); err == nil {
		if _, err := os.Stat(dir); err == nil {
			cgs = append(cgs, dir)
		}
	}
	for _, cg := range cgs {
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(stateDir(r.cfg.Root), id)); err != nil {
		errs = append(errs, fmt.Errorf("remove the container state: %w", err))
	}
	unmountInstance(r.instDir(id))
	r.stopNetwork(id)
	return errors.Join(errs...)
}

// instanceCgroups lists the cgroup directories of instance id that exist:
// /sys/fs/cgroup/chub/<id> (cgroup v2) or /sys/fs/cgroup/<controller>/chub/<id> (v1).
func instanceCgroups(id string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup" + cgroupParent + "/" + id, "/sys/fs/cgroup/*" + cgroupParent + "/" + id} {
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				out = append(out, p)
			}
		}
	}
	return out
}

// removeCgroup kills every process in the cgroup dir and its children,
// then removes them, deepest first.
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0) // v1 freezer: a frozen process cannot die
	os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)      // v2
	deadline := time.Now().Add(5 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			b, err := os.ReadFile(filepath.Join(dirs[i], "cgroup.procs"))
			pids := strings.Fields(string(b))
			if err != nil || len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cgroup %s: processes %v do not die", dirs[i], pids)
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil && pid > 1 {
					unix.Kill(pid, unix.SIGKILL)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		var err error
		for j := 0; j < 100; j++ {
			if err = unix.Rmdir(dirs[i]); err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("remove cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

// listenAgent binds and listens on the agent's socket in the instance
// directory dir, mode 0600, and returns the listener as a file for the
// agent to inherit. A long dir is reached through /proc/self/fd.
func listenAgent(dir string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, agentSocket, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, agentSocket))
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + agentSocket})
	if err == nil {
		// Only root may talk to the agent: it runs commands as anyone.
		err = unix.Fchmodat(dfd, agentSocket, 0o600, 0)
	}
	if err == nil {
		err = unix.Listen(fd, 128)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// DialAgent connects to the socket of the instance's agent: the one the
// server bound in the instance directory, opened without following links
// and checked to be a socket of root's before connecting to that very
// inode.
func (r *Runtime) DialAgent(ctx context.Context, id string) (net.Conn, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	conn, err := dialAgent(ctx, r.instDir(id))
	if err != nil {
		return nil, fmt.Errorf("dial the agent of instance %s: %w", id, err)
	}
	return conn, nil
}

func dialAgent(ctx context.Context, dir string) (net.Conn, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, agentSocket, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != 0 {
		return nil, fmt.Errorf("%s is not a socket of root's (mode %o, owner %d)", filepath.Join(dir, agentSocket), st.Mode, st.Uid)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(fd))
}
