package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// sshKey makes an ed25519 key pair with ssh-keygen and returns the private
// key's path and the public key line.
func sshKey(t *testing.T, name string) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(pub))
}

// createSSH makes a running instance with SSH enabled for pubKey.
func createSSH(t *testing.T, c *client.Client, name, pubKey string) *client.Compute {
	t.Helper()
	_, op, err := c.CreateCompute(ctx(t), client.CreateRequest{Name: name, Settings: chub.InstanceSettings{VMSize: "Standard_B1s",
		SSHSettings: &chub.SSHSettings{SSHPublicAccess: "Enabled", AdminPublicKey: pubKey}}})
	if err != nil {
		t.Fatalf("create %s with SSH: %v", name, err)
	}
	if _, err := c.Wait(ctx(t), op, "", name, nil); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	ci, err := c.GetCompute(ctx(t), "", name)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// sshTo runs Debian's OpenSSH tools against one instance.
type sshTo struct {
	t        *testing.T
	key      string
	port     int
	logLevel string // ERROR unless set
}

// opts are the options every OpenSSH tool gets: no known_hosts, no prompts.
func (o sshTo) opts(portFlag string) []string {
	level := o.logLevel
	if level == "" {
		level = "ERROR"
	}
	return []string{"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "LogLevel=" + level, "-o", "ConnectTimeout=10", "-i", o.key, portFlag, strconv.Itoa(o.port)}
}

// run runs prog (ssh, scp, sftp) with the options, args and stdin, and
// returns stdout, stderr and the exit code.
func (o sshTo) run(stdin string, prog string, args ...string) (string, string, int) {
	o.t.Helper()
	portFlag := "-p"
	if prog == "scp" || prog == "sftp" {
		portFlag = "-P"
	}
	cmd := exec.Command(prog, append(o.opts(portFlag), args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		o.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		o.t.Fatalf("%s %v: still running after 60s; stdout %q stderr %q", prog, args, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		o.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (o sshTo) ssh(stdin string, args ...string) (string, string, int) {
	o.t.Helper()
	return o.run(stdin, "ssh", append([]string{"azureuser@127.0.0.1"}, args...)...)
}

// listening reports whether something accepts TCP on 127.0.0.1:port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// syncBuffer is a bytes.Buffer safe to read while a session writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestSSH drives the OpenSSH client (ssh, scp, sftp, ssh -L) against a real
// server and instance: key-only login, commands and exit codes, a shell on
// a terminal, file copies both ways, port forwarding, a stopped instance,
// and a host key that survives a server restart.
func TestSSH(t *testing.T) {
	for _, prog := range []string{"ssh", "scp", "sftp", "ssh-keygen", "ssh-keyscan"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed (apt-get install openssh-client)", prog)
		}
	}
	// A narrow range of our own, so that the test can see every port of it.
	n, _ := rand.Int(rand.Reader, big.NewInt(400))
	first := 42000 + int(n.Int64())*20
	last := first + 19
	busyBefore := map[int]bool{}
	for p := first; p <= last; p++ {
		busyBefore[p] = listening(p)
	}
	s := startServer(t, "--ssh-ports", fmt.Sprintf("%d-%d", first, last))
	c := s.client()
	key, pub := sshKey(t, "user-key")
	otherKey, _ := sshKey(t, "other-key")

	ci := createSSH(t, c, "sshbox", pub)
	p := ci.Properties.Properties
	port := p.SSHSettings.SSHPort
	if port < first || port > last || p.SSHSettings.AdminUserName != "azureuser" || p.SSHSettings.SSHPublicAccess != "Enabled" {
		t.Fatalf("sshSettings = %+v; want a port in %d-%d and adminUserName azureuser", *p.SSHSettings, first, last)
	}
	if ce := p.ConnectivityEndpoints; ce == nil || ce.PublicIPAddress == nil || *ce.PublicIPAddress != "127.0.0.1" {
		t.Fatalf("connectivityEndpoints = %+v; want publicIpAddress 127.0.0.1", ce)
	}
	o := sshTo{t: t, key: key, port: port}

	// An instance without SSH has no port (whether or not it runs yet).
	if _, _, err := c.CreateCompute(ctx(t), client.CreateRequest{Name: "nossh", Settings: chub.InstanceSettings{VMSize: "Standard_B1ls"}}); err != nil {
		t.Fatal(err)
	}
	if ci, err := c.GetCompute(ctx(t), "", "nossh"); err != nil || ci.Properties.Properties.SSHSettings == nil ||
		ci.Properties.Properties.SSHSettings.SSHPort != 0 || ci.Properties.Properties.SSHSettings.SSHPublicAccess != "Disabled" {
		t.Fatalf("nossh sshSettings: %+v, %v; want Disabled and no port", ci.Properties.Properties.SSHSettings, err)
	}
	waitFor(t, 10*time.Second, "the SSH port to open", func() bool { return listening(port) })
	for q := first; q <= last; q++ {
		if q != port && !busyBefore[q] && listening(q) {
			t.Errorf("port %d of the SSH range is open; only %d (sshbox) should be", q, port)
		}
	}

	t.Run("keys the gateway cannot use are refused at create", func(t *testing.T) {
		for _, key := range []string{"", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm8 trunc", "not a key"} {
			_, _, err := c.CreateCompute(ctx(t), client.CreateRequest{Name: "badkey", Settings: chub.InstanceSettings{VMSize: "Standard_B1s",
				SSHSettings: &chub.SSHSettings{SSHPublicAccess: "Enabled", AdminPublicKey: key}}})
			if err == nil || !strings.Contains(err.Error(), "adminPublicKey") {
				t.Errorf("create with key %q: %v; want a 400 about adminPublicKey", key, err)
			}
		}
	})

	t.Run("show prints the ssh command", func(t *testing.T) {
		out, _, code := s.chub(t, "", "computetarget", "show", "-n", "sshbox")
		if want := fmt.Sprintf("ssh -p %d azureuser@127.0.0.1", port); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("show: exit %d; want %q in:\n%s", code, want, out)
		}
	})

	t.Run("exec and exit codes", func(t *testing.T) {
		if out, errs, code := o.ssh("", "echo hi; whoami; echo oops >&2"); code != 0 || out != "hi\nazureuser\n" || errs != "oops\n" {
			t.Fatalf("ssh echo hi: exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if _, _, code := o.ssh("", "exit 3"); code != 3 {
			t.Fatalf("ssh 'exit 3': exit %d; want 3", code)
		}
		if out, _, code := o.ssh("from stdin\n", "cat"); code != 0 || out != "from stdin\n" {
			t.Fatalf("ssh cat: exit %d, stdout %q", code, out)
		}
		if out, _, code := o.ssh("", "-o", "SetEnv=CHUB_SSH_TEST=passed", `echo "$CHUB_SSH_TEST $SSH_CONNECTION"`); code != 0 || !strings.HasPrefix(out, "passed 127.0.0.1 ") {
			t.Fatalf("ssh with SetEnv: exit %d, stdout %q", code, out)
		}
	})

	t.Run("shell on a terminal", func(t *testing.T) {
		out, errs, code := o.ssh("tty; echo shell-$((40+2)) $TERM\nexit 5\n", "-tt", "-o", "SetEnv=TERM=xterm-test")
		if code != 5 || !strings.Contains(out, "shell-42 xterm-test") || !strings.Contains(out, "/dev/pts/") {
			t.Fatalf("ssh -tt shell: exit %d; want 5, a pts and shell-42; stdout %q stderr %q", code, out, errs)
		}
	})

	t.Run("window changes reach the terminal", func(t *testing.T) {
		priv, err := os.ReadFile(key)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := gossh.ParsePrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := gossh.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &gossh.ClientConfig{User: "azureuser",
			Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sess, err := conn.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		sess.Stdout = &out
		stdin, _ := sess.StdinPipe()
		if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if err := sess.Start("stty size; while read line; do [ \"$line\" = end ] && exit 0; stty size; done"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the first size", func() bool { return strings.Contains(out.String(), "24 80") })
		if err := sess.WindowChange(50, 132); err != nil {
			t.Fatal(err)
		}
		// The resize and the input travel on different messages: ask until the new size shows.
		waitFor(t, 10*time.Second, "the new size", func() bool {
			stdin.Write([]byte("size\n"))
			time.Sleep(50 * time.Millisecond)
			return strings.Contains(out.String(), "50 132")
		})
		stdin.Write([]byte("end\n"))
		if err := sess.Wait(); err != nil {
			t.Fatalf("session: %v; output %q", err, out.String())
		}
	})

	t.Run("scp and sftp", func(t *testing.T) {
		dir := t.TempDir()
		data := make([]byte, 300<<10)
		rand.Read(data)
		local := filepath.Join(dir, "up.bin")
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errs, code := o.run("", "scp", local, "azureuser@127.0.0.1:up.bin"); code != 0 {
			t.Fatalf("scp in: exit %d: %s", code, errs)
		}
		got := mustRun(t, c, "sshbox", "sha256sum /home/azureuser/up.bin | cut -d' ' -f1; stat -c %U /home/azureuser/up.bin")
		if want := sha(data) + "\nazureuser\n"; got != want {
			t.Fatalf("copied file in the instance: %q; want %q", got, want)
		}
		// The legacy protocol (scp -O) runs scp in the instance instead of sftp.
		if _, errs, code := o.run("", "scp", "-O", local, "azureuser@127.0.0.1:legacy.bin"); code != 0 {
			t.Fatalf("scp -O in: exit %d: %s", code, errs)
		}
		if got := mustRun(t, c, "sshbox", "sha256sum legacy.bin | cut -d' ' -f1"); got != sha(data)+"\n" {
			t.Fatalf("scp -O: %q", got)
		}
		back := filepath.Join(dir, "back.bin")
		if _, errs, code := o.run("", "scp", "azureuser@127.0.0.1:up.bin", back); code != 0 {
			t.Fatalf("scp out: exit %d: %s", code, errs)
		}
		if b, err := os.ReadFile(back); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("scp out: %d bytes, %v; want the %d bytes sent", len(b), err, len(data))
		}
		batch := filepath.Join(dir, "batch")
		os.WriteFile(batch, []byte("mkdir sftpdir\ncd sftpdir\nput "+local+" s.bin\nls -l\nget s.bin "+filepath.Join(dir, "s.bin")+"\nrename s.bin t.bin\nls\n"), 0o644)
		out, errs, code := o.run("", "sftp", "-b", batch, "azureuser@127.0.0.1")
		if code != 0 || !strings.Contains(out, "t.bin") {
			t.Fatalf("sftp -b: exit %d; stdout %q stderr %q", code, out, errs)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "s.bin")); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("sftp get: %d bytes, %v", len(b), err)
		}
		if got := mustRun(t, c, "sshbox", "sha256sum sftpdir/t.bin | cut -d' ' -f1"); got != sha(data)+"\n" {
			t.Fatalf("sftp put: %q", got)
		}
		if _, err := exec.LookPath("rsync"); err != nil {
			t.Log("rsync is not installed on this host; skipping rsync over SSH")
			return
		}
		if _, code := run(t, c, "sshbox", "command -v rsync"); code != 0 {
			t.Log("the instance image has no rsync; skipping rsync over SSH")
			return
		}
		os.WriteFile(filepath.Join(dir, "small.txt"), []byte("rsynced\n"), 0o644)
		rsh := "ssh " + strings.Join(o.opts("-p"), " ")
		if out, err := exec.Command("rsync", "-a", "-e", rsh, filepath.Join(dir, "small.txt"), local, "azureuser@127.0.0.1:rs/").CombinedOutput(); err != nil {
			t.Fatalf("rsync in: %v: %s", err, out)
		}
		if got := mustRun(t, c, "sshbox", "cat rs/small.txt; sha256sum rs/up.bin | cut -d' ' -f1"); got != "rsynced\n"+sha(data)+"\n" {
			t.Fatalf("rsync in: %q", got)
		}
		if out, err := exec.Command("rsync", "-a", "-e", rsh, "azureuser@127.0.0.1:rs/", filepath.Join(dir, "rsback")+"/").CombinedOutput(); err != nil {
			t.Fatalf("rsync out: %v: %s", err, out)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "rsback", "up.bin")); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("rsync out: %d bytes, %v", len(b), err)
		}
	})

	t.Run("local port forwarding", func(t *testing.T) {
		inner := 8000 + int(n.Int64())
		mustRun(t, c, "sshbox", fmt.Sprintf("mkdir -p /tmp/www && echo forwarded-ok > /tmp/www/f.txt && cd /tmp/www && setsid python3 -m http.server %d --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &", inner))
		waitFor(t, 20*time.Second, "the server inside the instance", func() bool {
			_, code := run(t, c, "sshbox", fmt.Sprintf("python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", %d))'", inner))
			return code == 0
		})
		localPort, _ := strconv.Atoi(strings.TrimPrefix(freePort(t), "127.0.0.1:"))
		cmd := exec.Command("ssh", append(o.opts("-p"), "-N", "-o", "ExitOnForwardFailure=yes",
			"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", localPort, inner), "azureuser@127.0.0.1")...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		var body string
		waitFor(t, 20*time.Second, "a fetch through ssh -L", func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/f.txt", localPort))
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			return resp.StatusCode == 200
		})
		if body != "forwarded-ok\n" {
			t.Fatalf("through ssh -L: %q; ssh said %s", body, errb.String())
		}
		if listening(inner) && !busyBefore[inner] {
			// The instance's own port is not on the host: only the tunnel reaches it.
			if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/f.txt", inner)); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) == "forwarded-ok\n" {
					t.Fatalf("port %d of the instance is reachable from the host", inner)
				}
			}
		}
		// Only the instance's own ports may be forwarded.
		verbose := o
		verbose.logLevel = "INFO"
		if _, errs, code := verbose.ssh("", "-W", "10.1.2.3:22"); code == 0 || !strings.Contains(errs, "only ports of the instance itself") {
			t.Fatalf("ssh -W to another host: exit %d: %s", code, errs)
		}
	})

	t.Run("other keys and users are refused", func(t *testing.T) {
		other := sshTo{t: t, key: otherKey, port: port}
		if _, errs, code := other.ssh("", "true"); code != 255 || !strings.Contains(errs, "Permission denied (publickey)") {
			t.Fatalf("ssh with another key: exit %d: %s", code, errs)
		}
		if _, errs, code := o.run("", "ssh", "root@127.0.0.1", "true"); code != 255 || !strings.Contains(errs, "Permission denied") {
			t.Fatalf("ssh as root: exit %d: %s", code, errs)
		}
		// No password or keyboard-interactive login is offered.
		_, errs, _ := o.run("", "ssh", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive", "azureuser@127.0.0.1", "true")
		if !strings.Contains(errs, "Permission denied (publickey)") {
			t.Fatalf("ssh without a key: %s; want only publickey offered", errs)
		}
		// The audit log has the accepted connections and the refused ones.
		es, err := s.client().Audit(ctx(t), "1h", "", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range es {
			if e.Action == "ComputeHub/ssh/connect" {
				seen[e.Result] = true
			}
		}
		if !seen["Succeeded"] || !seen["Denied"] {
			t.Fatalf("audit entries of SSH connections: %v; want Succeeded and Denied", seen)
		}
	})

	t.Run("host key stable across a server restart", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(s.dataDir, "ssh", "ssh_host_ed25519_key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("host key file: %v, %v; want mode 0600", fi, err)
		}
		scan := func() string {
			out, err := exec.Command("ssh-keyscan", "-t", "ed25519", "-p", strconv.Itoa(port), "127.0.0.1").Output()
			if err != nil || !strings.Contains(string(out), "ssh-ed25519") {
				t.Fatalf("ssh-keyscan: %v: %q", err, out)
			}
			return strings.TrimSpace(string(out))
		}
		before := scan()
		s.restart()
		waitFor(t, 10*time.Second, "the SSH port after the restart", func() bool { return listening(port) })
		if after := scan(); after != before {
			t.Fatalf("host key changed across a restart:\n%s\n%s", before, after)
		}
		if out, errs, code := o.ssh("", "echo", "again"); code != 0 || out != "again\n" {
			t.Fatalf("ssh after a restart: exit %d %q %s", code, out, errs)
		}
	})

	t.Run("stopped refuses, started accepts on the same port", func(t *testing.T) {
		act(t, c, "sshbox", chub.OpStop)
		_, errs, code := o.ssh("", "true")
		if want := "compute instance sshbox is Stopped; start it with: chub computetarget start computeinstance -n sshbox"; code != 1 || !strings.Contains(errs, want) {
			t.Fatalf("ssh to a stopped instance: exit %d, stderr %q; want 1 and %q", code, errs, want)
		}
		// The login is audited as refused (409), not as a success.
		es, err := c.Audit(ctx(t), "1m", "", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 || es[0].Action != "ComputeHub/ssh/connect" || es[0].Result != "Refused" || es[0].Status != 409 {
			t.Fatalf("the newest audit entry after ssh to the stopped instance: %+v; want ssh/connect Refused 409", es)
		}
		act(t, c, "sshbox", chub.OpStart)
		ci, err := c.GetCompute(ctx(t), "", "sshbox")
		if err != nil || ci.Properties.Properties.SSHSettings.SSHPort != port {
			t.Fatalf("port after stop/start: %+v, %v; want %d", ci.Properties.Properties.SSHSettings, err, port)
		}
		if out, errs, code := o.ssh("", "cat up.bin | wc -c"); code != 0 || strings.TrimSpace(out) != strconv.Itoa(300<<10) {
			t.Fatalf("ssh after start: exit %d %q %s", code, out, errs)
		}
	})

	t.Run("delete closes the port", func(t *testing.T) {
		op, err := c.DeleteCompute(ctx(t), "", "sshbox")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wait(ctx(t), op, "", "sshbox", nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the SSH port to close", func() bool { return !listening(port) })
	})
}

// BenchmarkSSHSetup measures SSH connection setup to a running instance:
// TCP connect, key exchange, public-key authentication and running `true`
// (through the agent), with the Go SSH client and with OpenSSH's ssh.
//
//	CHUB_BIN=$PWD/bin/chub go test ./e2e -run '^$' -bench SSHSetup
func BenchmarkSSHSetup(b *testing.B) {
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(chubBin, "server", "--data-dir", dir, "--listen", addr, "--ssh-ports", "43000-43999")
	var logb bytes.Buffer
	srv.Stdout, srv.Stderr = &logb, &logb
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()
	ca := filepath.Join(dir, "tls", "ca.crt")
	until := func(what string, cond func() bool) {
		for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("timed out waiting for %s; server log:\n%s", what, tail(logb.String(), 3000))
			}
		}
	}
	until("the server", func() bool {
		hc, err := rawHTTP(ca)
		if err != nil {
			return false
		}
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(client.Config{Server: "https://" + addr, Token: strings.TrimSpace(string(tok)), CACert: ca})
	if err != nil {
		b.Fatal(err)
	}
	keyPath := filepath.Join(dir, "bench-key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyPath).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	pub, _ := os.ReadFile(keyPath + ".pub")
	priv, _ := os.ReadFile(keyPath)
	signer, err := gossh.ParsePrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	bctx := context.Background()
	_, op, err := c.CreateCompute(bctx, client.CreateRequest{Name: "sshbench", Settings: chub.InstanceSettings{VMSize: "Standard_B1s",
		SSHSettings: &chub.SSHSettings{SSHPublicAccess: "Enabled", AdminPublicKey: strings.TrimSpace(string(pub))}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Wait(bctx, op, "", "sshbench", nil); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if op, err := c.DeleteCompute(bctx, "", "sshbench"); err == nil && op != nil {
			c.Wait(bctx, op, "", "sshbench", nil)
		}
	}()
	ci, err := c.GetCompute(bctx, "", "sshbench")
	if err != nil {
		b.Fatal(err)
	}
	port := ci.Properties.Properties.SSHSettings.SSHPort
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	until("the SSH port", func() bool { return listening(port) })
	cfg := &gossh.ClientConfig{User: "azureuser", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}

	b.Run("go-client", func(b *testing.B) {
		var auth, cmd time.Duration
		for b.Loop() {
			t0 := time.Now()
			conn, err := gossh.Dial("tcp", target, cfg)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			sess, err := conn.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			if err := sess.Run("true"); err != nil {
				b.Fatal(err)
			}
			auth, cmd = auth+t1.Sub(t0), cmd+time.Since(t1)
			conn.Close()
		}
		b.ReportMetric(float64(auth.Milliseconds())/float64(b.N), "connect+auth-ms/op")
		b.ReportMetric(float64(cmd.Milliseconds())/float64(b.N), "session+true-ms/op")
	})
	b.Run("openssh", func(b *testing.B) {
		for b.Loop() {
			out, err := exec.Command("ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
				"-o", "LogLevel=ERROR", "-i", keyPath, "-p", strconv.Itoa(port), "azureuser@127.0.0.1", "true").CombinedOutput()
			if err != nil {
				b.Fatalf("ssh true: %v: %s", err, out)
			}
		}
	})
}
