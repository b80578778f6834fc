package sshgate_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/computehub/chub"
	"github.com/computehub/chub/agent"
	"github.com/computehub/chub/gateway/sshgate"
	"github.com/computehub/chub/sqlite"
)

// socketAgents reaches one real agent serving on a unix socket in this
// process (the runtime's part is only the socket).
type socketAgents struct{ sock string }

func (a socketAgents) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", a.sock)
		}}}
}

func (a socketAgents) Websocket(ctx context.Context, _ string, path string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, "ws://agent"+path, &websocket.DialOptions{HTTPClient: a.client()})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(-1)
	return c, nil
}

func (a socketAgents) DialTCP(ctx context.Context, id string, port int) (net.Conn, error) {
	c, err := a.Websocket(context.WithoutCancel(ctx), id, "/v1/dial?port="+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
}

type gateFixture struct {
	store  *sqlite.DB
	c      *chub.Compute
	addr   string
	client *ssh.ClientConfig
	signer ssh.Signer
	agents socketAgents
	audits *auditLog
}

// auditLog records what the gate audits, as the server's store would.
type auditLog struct {
	mu      sync.Mutex
	entries []string // "RESULT COMPUTE_ID"
}

func (a *auditLog) add(_ context.Context, computeID, result, _ string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, result+" "+computeID)
}

func (a *auditLog) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.entries
	a.entries = nil
	return e
}

// startGate runs a real agent on this host (sessions as nobody), a real store with
// one Running compute with SSH, and the manager with its listener.
func startGate(tb testing.TB) *gateFixture {
	tb.Helper()
	if os.Getuid() != 0 {
		tb.Skip("the agent runs commands as other users: needs root")
	}
	dir := tb.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)

	sock := filepath.Join(dir, "agent.sock")
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- agent.Run(ctx, agent.Config{SocketPath: sock, User: "root", StopGrace: time.Second})
	}()
	tb.Cleanup(func() { cancel(); <-agentDone })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the agent never listened")
		}
	}

	userKey, err := sshgate.LoadOrCreateHostKey(filepath.Join(dir, "user"))
	if err != nil {
		tb.Fatal(err)
	}
	hostKey, err := sshgate.LoadOrCreateHostKey(filepath.Join(dir, "host"))
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "chub.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	scope := chub.WorkspaceScope{Subscription: "s", ResourceGroup: "rg", Workspace: "ws"}
	if _, err := db.PutWorkspace(ctx, &chub.Workspace{ID: "w1", Scope: scope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c := &chub.Compute{ID: "c1", WorkspaceID: "w1", Scope: scope, Name: "box1", Location: "local", Desired: chub.DesiredRunning,
		State: chub.StateRunning, SSHPort: port, CreatedAt: time.Now(), ModifiedAt: time.Now(),
		Settings: chub.InstanceSettings{VMSize: "Standard_B1s", SSHSettings: &chub.SSHSettings{SSHPublicAccess: "Enabled",
			AdminUserName: "azureuser", AdminPublicKey: string(ssh.MarshalAuthorizedKey(userKey.PublicKey()))}}}
	op := &chub.Operation{ID: "op1", ComputeID: c.ID, Name: chub.OpCreate, Status: chub.OpSucceeded, StartTime: time.Now()}
	if err := db.CreateCompute(ctx, c, op); err != nil {
		tb.Fatal(err)
	}

	audits := &auditLog{}
	m := sshgate.New(sshgate.Config{Store: db, Agents: socketAgents{sock}, HostKey: hostKey, Host: "127.0.0.1", RunAs: "nobody", Audit: audits.add})
	go m.Run(ctx)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the SSH listener never opened")
		}
	}
	return &gateFixture{store: db, c: c, addr: addr, signer: userKey, agents: socketAgents{sock}, audits: audits,
		client: &ssh.ClientConfig{User: "azureuser", Auth: []ssh.AuthMethod{ssh.PublicKeys(userKey)},
			HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()), Timeout: 5 * time.Second}}
}

func (f *gateFixture) run(t *testing.T, cmd string) (string, string, int) {
	t.Helper()
	conn, err := ssh.Dial("tcp", f.addr, f.client)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	s, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitStatus()
	}
	t.Fatalf("run %q: %v", cmd, err)
	return "", "", 0
}

func TestGateExecForwardAndState(t *testing.T) {
	f := startGate(t)
	if out, errs, code := f.run(t, "echo hi; echo err >&2; exit 3"); out != "hi\n" || errs != "err\n" || code != 3 {
		t.Fatalf("exec: %q %q %d; want hi, err, 3", out, errs, code)
	}

	// Other users and keys are refused.
	other, _ := sshgate.LoadOrCreateHostKey(t.TempDir())
	for _, cfg := range []*ssh.ClientConfig{
		{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(f.signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()},
		{User: "azureuser", Auth: []ssh.AuthMethod{ssh.PublicKeys(other)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()},
		{User: "azureuser", Auth: []ssh.AuthMethod{ssh.Password("x")}, HostKeyCallback: ssh.InsecureIgnoreHostKey()},
	} {
		if conn, err := ssh.Dial("tcp", f.addr, cfg); err == nil {
			conn.Close()
			t.Errorf("login as %s with %v was accepted", cfg.User, cfg.Auth)
		}
	}

	// Forwarding reaches a port on the agent's loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	conn, err := ssh.Dial("tcp", f.addr, f.client)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc, err := conn.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	tc.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("forwarded echo: %q, %v", buf, err)
	}
	tc.Close()
	if _, err := conn.Dial("tcp", "10.9.8.7:80"); err == nil || !strings.Contains(err.Error(), "only ports of the instance itself") {
		t.Fatalf("forward to another host: %v; want refused", err)
	}

	// A stopped instance refuses sessions with the way out.
	c, err := f.store.GetComputeByID(context.Background(), f.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.State = chub.StateStopped
	if err := f.store.UpdateCompute(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	f.audits.take()
	if _, errs, code := f.run(t, "true"); code != 1 || !strings.Contains(errs, "compute instance box1 is Stopped; start it with: chub computetarget start computeinstance -n box1 -w ws") {
		t.Fatalf("stopped: exit %d, stderr %q", code, errs)
	}
	// The refused login is audited as a refusal, not as a success (a Denied
	// of the refused keys above may still arrive: their handshakes end late).
	var got []string
	for _, e := range f.audits.take() {
		if e != "Denied c1" {
			got = append(got, e)
		}
	}
	if len(got) != 1 || got[0] != "Refused c1" {
		t.Fatalf("a login to the stopped instance was audited as %q; want [Refused c1]", got)
	}
}

// BenchmarkGateSetup is the gateway's own share of SSH connection setup:
// connect, key exchange, authentication and `true` through a real agent
// on this host, without containers or the API server.
func BenchmarkGateSetup(b *testing.B) {
	f := startGate(b)
	for b.Loop() {
		conn, err := ssh.Dial("tcp", f.addr, f.client)
		if err != nil {
			b.Fatal(err)
		}
		s, err := conn.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Run("true"); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}
