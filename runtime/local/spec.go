package local

import (
	"fmt"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	chub "github.com/computehub/chub"
)

// capabilities is Docker's default set: enough for dpkg, useradd and
// sudo, not for mount, nsenter or loading modules.
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// defaultPidsLimit applies when the spec sets none.
const defaultPidsLimit = 4096

// cgroupParent holds the cgroups of every instance: /chub/<id>.
const cgroupParent = "/chub"

// ociSpec describes the instance as an OCI runtime spec. dir is the
// instance directory; the root filesystem is mounted already (rootfsPath);
// ids is the instance's id range (its user namespace).
func (r *Runtime) ociSpec(spec chub.InstanceSpec, dir string, ids *idMap) *specs.Spec {
	s := specconv.Example()
	s.Root = &specs.Root{Path: rootfsPath(spec.ID)}
	s.Hostname = spec.Hostname
	s.Process.Terminal = false
	s.Process.Args = []string{agentPath, "agent", "--listen-fd", "3"}
	s.Process.Cwd = "/"
	s.Process.NoNewPrivileges = false
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  capabilities,
		Effective: capabilities,
		Permitted: capabilities,
	}
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err == nil {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile.Max, Soft: min(nofile.Max, 1024)}}
	} else {
		s.Process.Rlimits = nil
	}
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=10%"}},
		specs.Mount{Destination: agentPath, Type: "bind", Source: r.cfg.AgentBinary, Options: []string{"bind", "ro", "nosuid", "nodev"}},
	)
	if spec.OutboundNetwork {
		// Rewritten at every start: the user-mode network's resolver.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(dir, resolvConf), Options: []string{"bind", "rw", "nosuid", "nodev", "noexec"}})
	}
	// /sys/fs/cgroup shows the instance's own cgroups, read-only.
	s.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.UserNamespace},
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	}
	// Root inside is the first id of the instance's range on the host.
	mapping := []specs.LinuxIDMapping{{ContainerID: 0, HostID: ids.HostID, Size: ids.Size}}
	s.Linux.UIDMappings, s.Linux.GIDMappings = mapping, mapping
	s.Linux.RootfsPropagation = "rprivate"
	s.Linux.CgroupsPath = cgroupParent + "/" + spec.ID
	res := &specs.LinuxResources{Devices: s.Linux.Resources.Devices}
	if spec.CPUMillis > 0 {
		period := uint64(100000)
		quota := spec.CPUMillis * int64(period) / 1000
		res.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if spec.MemoryBytes > 0 {
		limit := spec.MemoryBytes
		res.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	pids := spec.PidsLimit
	if pids <= 0 {
		pids = defaultPidsLimit
	}
	res.Pids = &specs.LinuxPids{Limit: &pids}
	s.Linux.Resources = res
	if seccomp.Enabled {
		s.Linux.Seccomp = seccompProfile()
	}
	return s
}

// containerConfig turns the instance's OCI spec into libcontainer's config.
// The disk is mounted already, so its id range is chosen.
func (r *Runtime) containerConfig(spec chub.InstanceSpec, dir string) (*configs.Config, error) {
	ids, err := readIDMap(dir)
	if err != nil {
		return nil, fmt.Errorf("the instance's id range: %w", err)
	}
	return specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:   spec.ID,
		NoNewKeyring: true,
		Spec:         r.ociSpec(spec, dir, ids),
	})
}
