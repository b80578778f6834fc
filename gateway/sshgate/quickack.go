package sshgate

import (
	"net"

	"golang.org/x/sys/unix"
)

// quickAckConn acknowledges every segment at once. OpenSSH's client leaves
// Nagle's algorithm on for non-interactive sessions, so each of its small
// back-to-back handshake messages waits for the ACK of the one before;
// with the kernel's delayed ACKs that costs ~40 ms per round. Linux turns
// quick-ack mode off again on its own, so it is set after every read.
type quickAckConn struct {
	*net.TCPConn
	raw interface{ Control(func(fd uintptr)) error }
}

func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	q := &quickAckConn{TCPConn: tc, raw: raw}
	q.quickAck()
	return q
}

func (c *quickAckConn) quickAck() {
	c.raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.quickAck()
	return n, err
}
