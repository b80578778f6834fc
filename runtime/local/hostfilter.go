package local

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// What an instance reaches on the host's loopback. pasta turns the
// instance's connections to 10.0.2.2 into connections of its own to the
// host's 127.0.0.1 (and a crafted packet to 127.0.0.1 on the tap interface
// the same way), so the limit sits where pasta connects: each instance's
// pasta runs in a cgroup of its own (cgroup v2, <v2 root>/chub-net/<id>)
// with an eBPF program on connect and sendmsg that refuses (EPERM, which
// pasta answers with a reset) every IPv4 loopback destination whose port
// is not in Config.HostPorts. Everything else pasta connects to (the
// internet, the host's other addresses) is untouched. The program stays
// attached to the cgroup when the server exits, as pasta does, and is
// replaced with the current ports whenever a server (re)starts that pasta.

// hostFilterCgroup is the parent, under the cgroup v2 root, of the pastas'
// cgroups.
const hostFilterCgroup = "chub-net"

// cgroup2Root returns where the cgroup v2 hierarchy is mounted: the
// unified /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
func cgroup2Root() (string, error) {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (neither /sys/fs/cgroup nor /sys/fs/cgroup/unified): instances with outbound network need one to limit what they reach on the host's loopback")
}

// hostFilterDir is the cgroup of the pasta of instance id.
func hostFilterDir(id string) (string, error) {
	root, err := cgroup2Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, hostFilterCgroup, id), nil
}

// hostPorts are the loopback ports the instances' pastas may reach: the
// configured ones and, when this host's resolver listens on its loopback
// (systemd-resolved's 127.0.0.53), port 53 for pasta's DNS forwarding.
func (r *Runtime) hostPorts() []uint16 {
	ports := slices.Clone(r.cfg.HostPorts)
	if resolverOnLoopback() {
		ports = append(ports, 53)
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// resolverOnLoopback says whether the host's first nameserver, where pasta
// forwards the instance's DNS, is a loopback address.
func resolverOnLoopback() bool {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "nameserver" {
			a, err := netip.ParseAddr(fs[1])
			return err == nil && a.Unmap().IsLoopback()
		}
	}
	return false
}

// prepareHostFilter makes (or keeps) the cgroup of instance id's pasta,
// attaches the loopback filter for ports to it, and returns an open
// descriptor of it to start pasta in. The caller closes it.
func prepareHostFilter(id string, ports []uint16) (*os.File, error) {
	dir, err := hostFilterDir(id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the cgroup of the instance's network: %w", err)
	}
	cg, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := attachHostFilter(cg, ports); err != nil {
		cg.Close()
		return nil, fmt.Errorf("limit the instance's network on the host's loopback: %w", err)
	}
	return cg, nil
}

// attachHostFilter attaches (replacing any earlier one) the loopback
// filter to the cgroup cg, for connect and for sendmsg.
func attachHostFilter(cg *os.File, ports []uint16) error {
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupUDP4Sendmsg} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "chub_host_lo",
			Type:         ebpf.CGroupSockAddr,
			AttachType:   at,
			Instructions: hostFilterProgram(ports),
			License:      "Apache-2.0",
		})
		if err != nil {
			return fmt.Errorf("load the eBPF program: %w", err)
		}
		// A program attached without a link stays attached when this
		// process exits; attaching again replaces it.
		err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: int(cg.Fd()), Program: prog, Attach: at})
		prog.Close()
		if err != nil {
			return fmt.Errorf("attach the eBPF program: %w", err)
		}
	}
	return nil
}

// The offsets in struct bpf_sock_addr (linux/bpf.h) of the destination,
// both in network byte order.
const (
	sockAddrUserIP4  = 4
	sockAddrUserPort = 24
)

// hostFilterProgram returns 1 (go on) unless the destination is in
// 127.0.0.0/8 and its port is not one of ports, then 0 (EPERM).
func hostFilterProgram(ports []uint16) asm.Instructions {
	// The first octet of an address loaded as a native 32-bit word.
	octetMask, loopback := int32(0xff), int32(127)
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 { // big-endian
		octetMask, loopback = -0x1000000, 0x7f000000 // 0xff000000
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, sockAddrUserIP4, asm.Word),
		asm.And.Imm(asm.R2, octetMask),
		asm.JNE.Imm(asm.R2, loopback, "allow"),
		asm.LoadMem(asm.R3, asm.R1, sockAddrUserPort, asm.Word),
	}
	for _, p := range ports {
		var b [2]byte
		binary.BigEndian.PutUint16(b[:], p)
		insns = append(insns, asm.JEq.Imm(asm.R3, int32(binary.NativeEndian.Uint16(b[:])), "allow"))
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"),
		asm.Return(),
	)
}

// removeHostFilter removes the cgroup of instance id's pasta (pasta has
// exited), and with it the filter.
func removeHostFilter(id string) {
	dir, err := hostFilterDir(id)
	if err != nil {
		return
	}
	for i := 0; i < 100; i++ {
		if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ParseHostPorts parses a comma-separated list of ports and FIRST-LAST
// ranges ("5432,8000-8010"), as --instance-host-ports takes them. An
// empty list is none.
func ParseHostPorts(s string) ([]uint16, error) {
	var ports []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		first, last, isRange := strings.Cut(f, "-")
		lo, err := parsePort(first)
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = parsePort(last); err != nil {
				return nil, err
			}
			if hi < lo || int(hi)-int(lo) > 1024 {
				return nil, fmt.Errorf("port range %q: want FIRST-LAST with FIRST <= LAST, at most 1025 ports", f)
			}
		}
		for p := int(lo); p <= int(hi); p++ {
			ports = append(ports, uint16(p))
		}
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}
