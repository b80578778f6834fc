package sshgate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/computehub/chub"
)

// maxConns bounds the connections (authenticated or not) one instance's
// port holds at once.
const maxConns = 128

// gate is the SSH listener of one instance.
type gate struct {
	m         *Manager
	computeID string
	port      int
	ln        net.Listener
	ctx       context.Context
	cancel    context.CancelFunc

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

func newGate(m *Manager, computeID string, port int, ln net.Listener) *gate {
	ctx, cancel := context.WithCancel(context.Background())
	return &gate{m: m, computeID: computeID, port: port, ln: ln, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// close stops listening and ends every connection of the instance.
func (g *gate) close() {
	g.cancel()
	g.ln.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.Close()
	}
}

func (g *gate) serve() {
	for {
		conn, err := g.ln.Accept()
		if err != nil {
			if g.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			g.m.log.Warn("ssh accept failed", "port", g.port, "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		g.mu.Lock()
		if g.ctx.Err() != nil {
			g.mu.Unlock()
			conn.Close()
			return
		}
		if len(g.conns) >= maxConns {
			g.mu.Unlock()
			g.m.log.Warn("ssh connection refused: too many open", "port", g.port, "compute", g.computeID, "remote", conn.RemoteAddr())
			conn.Close()
			continue
		}
		g.conns[conn] = struct{}{}
		g.mu.Unlock()
		go func() {
			defer func() {
				g.mu.Lock()
				delete(g.conns, conn)
				g.mu.Unlock()
				conn.Close()
			}()
			g.handle(conn)
		}()
	}
}

// serverConfig authenticates the instance's admin key only: no passwords,
// no keyboard-interactive, no other user than azureuser.
func (g *gate) serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		MaxAuthTries:  6,
		ServerVersion: "SSH-2.0-ComputeHub",
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if meta.User() != AdminUser {
				return nil, fmt.Errorf("user %q refused: log in as %s", meta.User(), AdminUser)
			}
			c, err := g.m.cfg.Store.GetComputeByID(g.ctx, g.computeID)
			if err != nil {
				return nil, fmt.Errorf("compute %s: %w", g.computeID, err)
			}
			s := c.Settings.SSHSettings
			if s == nil || s.SSHPublicAccess != "Enabled" {
				return nil, errors.New("SSH is disabled for this compute")
			}
			want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.AdminPublicKey))
			if err != nil {
				return nil, fmt.Errorf("the admin key of compute %s does not parse: %w", c.Name, err)
			}
			if !bytes.Equal(want.Marshal(), key.Marshal()) {
				return nil, errors.New("not the admin key of this compute")
			}
			return &ssh.Permissions{}, nil
		},
	}
	cfg.AddHostKey(g.m.cfg.HostKey)
	return cfg
}

// handle runs one SSH connection.
func (g *gate) handle(nc net.Conn) {
	nc = withQuickAck(nc)
	nc.SetDeadline(time.Now().Add(g.m.cfg.HandshakeTimeout))
	cfg := g.serverConfig()
	refused := false // a key or user was refused during this handshake
	check := cfg.PublicKeyCallback
	cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		perms, err := check(meta, key)
		if err != nil {
			refused = true
		}
		return perms, err
	}
	sconn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		g.m.log.Debug("ssh handshake failed", "port", g.port, "remote", nc.RemoteAddr(), "err", err)
		if g.m.cfg.Audit != nil && refused {
			g.m.cfg.Audit(g.ctx, g.computeID, "Denied", nc.RemoteAddr().String())
		}
		return
	}
	if g.m.cfg.Audit != nil {
		// Authenticated; the instance takes sessions only while it runs
		// (each session and forward is then refused with the reason).
		result := "Succeeded"
		if _, why := g.running(g.ctx); why != "" {
			result = "Refused"
		}
		g.m.cfg.Audit(g.ctx, g.computeID, result, nc.RemoteAddr().String())
	}
	nc.SetDeadline(time.Time{})
	defer sconn.Close()
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	go func() {
		sconn.Wait()
		cancel()
	}()
	go ssh.DiscardRequests(reqs) // no remote forwarding (ssh -R), no other global requests
	g.m.log.Debug("ssh connection", "port", g.port, "compute", g.computeID, "remote", nc.RemoteAddr())
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			go g.session(ctx, sconn, nch)
		case "direct-tcpip":
			go g.forward(ctx, nch)
		default:
			nch.Reject(ssh.UnknownChannelType, "only sessions and local port forwarding (ssh -L) are supported")
		}
	}
}

// running loads the instance and says why it cannot take a session now,
// or "" when it can.
func (g *gate) running(ctx context.Context) (*chub.Compute, string) {
	c, err := g.m.cfg.Store.GetComputeByID(ctx, g.computeID)
	if chub.IsNotFound(err) {
		return nil, "this compute instance no longer exists"
	}
	if err != nil {
		return nil, fmt.Sprintf("cannot read the compute instance: %v", err)
	}
	switch {
	case c.Desired == chub.DesiredDeleted:
		return c, fmt.Sprintf("compute instance %s is being deleted", c.Name)
	case c.State == chub.StateRunning || c.State == chub.StateJobRunning:
		return c, ""
	case c.State == chub.StateStopped:
		return c, fmt.Sprintf("compute instance %s is Stopped; start it with: chub computetarget start computeinstance -n %s%s", c.Name, c.Name, wsFlag(c))
	default:
		return c, fmt.Sprintf("compute instance %s is %s, not Running; try again once it runs (chub computetarget show -n %s%s)", c.Name, c.State, c.Name, wsFlag(c))
	}
}

// wsFlag is the CLI's workspace flag for instances outside the default workspace.
func wsFlag(c *chub.Compute) string {
	if c.Scope.Workspace == "" || c.Scope.Workspace == "default" {
		return ""
	}
	return " -w " + c.Scope.Workspace
}
