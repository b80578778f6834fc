package sshgate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"

	"github.com/computehub/chub"
)

// PortRange is an inclusive range of TCP ports on the server's host.
type PortRange struct {
	First, Last int
}

// DefaultPorts is the range SSH ports are taken from unless configured.
var DefaultPorts = PortRange{First: 50000, Last: 50999}

// ParsePortRange parses "FIRST-LAST" (or a single port).
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	a, b, found := strings.Cut(s, "-")
	if !found {
		b = a
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("SSH port range %q: want FIRST-LAST, e.g. 50000-50999", s)
	}
	r := PortRange{First: first, Last: last}
	if first < 1 || last > 65535 || first > last {
		return PortRange{}, fmt.Errorf("SSH port range %q: ports must be 1-65535 and FIRST <= LAST", s)
	}
	return r, nil
}

// Size is the number of ports in the range.
func (r PortRange) Size() int { return r.Last - r.First + 1 }

// Contains reports whether port is in the range.
func (r PortRange) Contains(port int) bool { return port >= r.First && port <= r.Last }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Allocator picks SSH ports for new instances. The store's unique index on
// the port is what makes an allocation final: Pick only proposes a port that
// is neither recorded for another instance nor in use on the host, and the
// caller retries with a fresh proposal when the insert conflicts.
type Allocator struct {
	Range PortRange
	Store chub.Store
	// Host is the address the SSH listeners bind ("" for all addresses).
	Host string
	// InUse reports whether someone else holds port on the host; nil
	// checks by trying to listen on it.
	InUse func(host string, port int) bool
	// Rand returns a number in [0, n); nil uses math/rand.
	Rand func(n int) int
}

// ErrNoPorts is returned when every port of the range is taken.
var ErrNoPorts = chub.Errorf(chub.KindConflict, "NoSshPortAvailable", "properties.properties.sshSettings",
	"every SSH port of this server is taken; delete an instance with SSH or ask the administrator to widen --ssh-ports")

// Pick proposes a free port. It starts at a random point of the range so
// that concurrent creates rarely propose the same port.
func (a *Allocator) Pick(ctx context.Context) (int, error) {
	all, err := a.Store.ListAllComputes(ctx)
	if err != nil {
		return 0, fmt.Errorf("list SSH ports in use: %w", err)
	}
	taken := make(map[int]bool, len(all))
	for _, c := range all {
		if c.SSHPort != 0 {
			taken[c.SSHPort] = true
		}
	}
	n := a.Range.Size()
	rnd, inUse := a.Rand, a.InUse
	if rnd == nil {
		rnd = rand.IntN
	}
	if inUse == nil {
		inUse = hostPortInUse
	}
	start := rnd(n)
	for i := 0; i < n; i++ {
		port := a.Range.First + (start+i)%n
		if taken[port] || inUse(a.Host, port) {
			continue
		}
		return port, nil
	}
	return 0, ErrNoPorts
}

// hostPortInUse reports whether listening on host:port fails.
func hostPortInUse(host string, port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return true
	}
	ln.Close()
	return false
}
