// Package sshgate provides the SSH front door of compute instances: one
// listener per instance with SSH enabled, on a port of the server's host,
// that authenticates the instance's admin key and carries shells, commands,
// sftp and port forwarding into the instance through its agent.
package sshgate

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/computehub/chub"
)

// AdminUser is the only user name SSH accepts, as in Azure.
const AdminUser = "azureuser"

// Store is what the gateway reads of the store.
type Store interface {
	ListAllComputes(ctx context.Context) ([]*chub.Compute, error)
	GetComputeByID(ctx context.Context, id string) (*chub.Compute, error)
}

// Agents reaches the agent inside an instance (agentclient.Client).
type Agents interface {
	Websocket(ctx context.Context, id, path string) (*websocket.Conn, error)
	DialTCP(ctx context.Context, id string, port int) (net.Conn, error)
}

// Config configures a Manager.
type Config struct {
	Store   Store
	Agents  Agents
	HostKey ssh.Signer
	// Host is the address listeners bind ("" for all addresses).
	Host string
	// Resync is how often the listeners are compared with the store even
	// without a Wake (default 5s).
	Resync time.Duration
	// HandshakeTimeout bounds a connection's key exchange and
	// authentication (default 30s).
	HandshakeTimeout time.Duration
	// RunAs is the instance's user that sessions run as (default azureuser).
	RunAs  string
	Logger *slog.Logger
	// Audit, when set, records each connection: result is Succeeded,
	// Denied (authentication refused) or Refused (authenticated, but the
	// instance is not Running, so its sessions are refused).
	Audit func(ctx context.Context, computeID, result, remoteAddr string)
}

// Manager keeps one SSH listener open for every instance that has an SSH
// port in the store, and none for any other. It is level-triggered: each
// sync compares the open listeners with the store.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu        sync.Mutex       // guards listeners and failed
	listeners map[int]*gate    // by port
	failed    map[int]struct{} // ports whose listen failed (logged once)
}

// New returns a manager; Run starts it.
func New(cfg Config) *Manager {
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RunAs == "" {
		cfg.RunAs = AdminUser
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "ssh"), wake: make(chan struct{}, 1),
		listeners: map[int]*gate{}, failed: map[int]struct{}{}}
}

// Wake asks for a sync soon (an instance was created or deleted).
func (m *Manager) Wake(string) {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Sync opens and closes listeners to match the store now.
func (m *Manager) Sync(ctx context.Context) error {
	all, err := m.cfg.Store.ListAllComputes(ctx)
	if err != nil {
		return fmt.Errorf("list computes: %w", err)
	}
	want := map[int]string{}
	for _, c := range all {
		if c.SSHPort != 0 && c.Desired != chub.DesiredDeleted {
			want[c.SSHPort] = c.ID
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for port, g := range m.listeners {
		if want[port] != g.computeID {
			g.close()
			delete(m.listeners, port)
			m.log.Debug("ssh listener closed", "port", port, "compute", g.computeID)
		}
	}
	for port := range m.failed {
		if _, ok := want[port]; !ok {
			delete(m.failed, port)
		}
	}
	for port, id := range want {
		if _, ok := m.listeners[port]; ok {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(m.cfg.Host, strconv.Itoa(port)))
		if err != nil {
			if _, logged := m.failed[port]; !logged {
				m.log.Warn("cannot open the SSH port of an instance; retrying", "port", port, "compute", id, "err", err)
				m.failed[port] = struct{}{}
			}
			continue
		}
		delete(m.failed, port)
		g := newGate(m, id, port, ln)
		m.listeners[port] = g
		go g.serve()
		m.log.Debug("ssh listener open", "port", port, "compute", id)
	}
	return nil
}

// Run syncs at start, on every Wake and every Resync until ctx ends, then
// closes every listener and connection.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Resync)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("ssh sync failed", "err", err)
		}
		select {
		case <-ctx.Done():
			m.closeAll()
			return
		case <-m.wake:
		case <-t.C:
		}
	}
}

func (m *Manager) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for port, g := range m.listeners {
		g.close()
		delete(m.listeners, port)
	}
}

// Ports returns the ports with an open listener (for tests and status).
func (m *Manager) Ports() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int
	for p := range m.listeners {
		ps = append(ps, p)
	}
	return ps
}

// PublicHost is the address users connect to for a server listening on
// listen (host:port): its host, or this machine's name when it listens on
// every address.
func PublicHost(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if hn, err := os.Hostname(); err == nil {
			return hn
		}
		return "localhost"
	}
	return host
}

// CheckKey parses an authorized_keys line with the SSH library, so that a
// key accepted at create is one the gateway can authenticate against.
func CheckKey(authorizedKey string) error {
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey)); err != nil {
		return chub.Invalid("InvalidSshPublicKey", "properties.properties.sshSettings.adminPublicKey",
			"adminPublicKey is not a valid OpenSSH public key: %v", err)
	}
	return nil
}
