package sshgate

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// directTCPIP is the payload of a direct-tcpip channel open (RFC 4254, 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// forward serves local port forwarding (ssh -L) to a port on the
// instance's own loopback, through the agent's tunnel.
func (g *gate) forward(ctx context.Context, nch ssh.NewChannel) {
	var p directTCPIP
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		nch.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	c, why := g.running(ctx)
	if why != "" {
		nch.Reject(ssh.Prohibited, why)
		return
	}
	if !instanceHost(p.Host, c.Name) || p.Port < 1 || p.Port > 65535 {
		nch.Reject(ssh.Prohibited, fmt.Sprintf("only ports of the instance itself can be forwarded (localhost:PORT), not %s:%d", p.Host, p.Port))
		return
	}
	target, err := g.m.cfg.Agents.DialTCP(ctx, c.ID, int(p.Port))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("connect to port %d in compute instance %s: %v", p.Port, c.Name, err))
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		target.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	// The tunnel cannot half-close, so the first side to finish ends both.
	var once sync.Once
	done := make(chan struct{})
	end := func() {
		once.Do(func() {
			target.Close()
			ch.Close()
			close(done)
		})
	}
	go func() { io.Copy(target, ch); end() }()
	go func() { io.Copy(ch, target); ch.CloseWrite(); end() }()
	select {
	case <-done:
	case <-ctx.Done():
		end()
	}
}

// instanceHost reports whether host names the instance itself.
func instanceHost(host, name string) bool {
	switch strings.ToLower(strings.Trim(host, "[]")) {
	case "localhost", "127.0.0.1", "::1", strings.ToLower(name):
		return true
	}
	return false
}
