package sshgate

import (
	"context"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/computehub/chub/streamproto"
)

// SFTPServer is the command that serves the sftp subsystem inside an
// instance: the chub binary the runtime mounts there, run as the user.
var SFTPServer = []string{"/.chub/chub", "sftp-server"}

// execShell runs the command of an exec request, as OpenSSH does with the
// user's shell.
const execShell = "/bin/bash"

// The payloads of the session requests (RFC 4254, section 6).
type ptyReq struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

type envReq struct{ Name, Value string }

type commandReq struct{ Command string }

type exitStatus struct{ Status uint32 }

// session serves one session channel: it gathers the pty, environment
// and window sizes, then runs the shell, command or subsystem asked for
// through the agent's exec stream.
func (g *gate) session(ctx context.Context, sconn *ssh.ServerConn, nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	req := streamproto.ExecRequest{User: g.m.cfg.RunAs, Env: connEnv(sconn)}
	resize := make(chan streamproto.Size, 16)
	started := false
	for r := range reqs {
		ok := true
		switch r.Type {
		case "pty-req":
			var p ptyReq
			if ok = !started && ssh.Unmarshal(r.Payload, &p) == nil; ok {
				req.TTY, req.Cols, req.Rows = true, clamp16(p.Cols), clamp16(p.Rows)
				if p.Term != "" {
					req.Env = setEnv(req.Env, "TERM", p.Term)
				}
			}
		case "env":
			var e envReq
			if ok = !started && ssh.Unmarshal(r.Payload, &e) == nil && validEnvName(e.Name); ok {
				req.Env = setEnv(req.Env, e.Name, e.Value)
			}
		case "window-change":
			var w windowChange
			if ok = ssh.Unmarshal(r.Payload, &w) == nil; ok {
				sendLatest(resize, streamproto.Size{Cols: clamp16(w.Cols), Rows: clamp16(w.Rows)})
			}
		case "shell", "exec", "subsystem":
			if started {
				ok = false
				break
			}
			var cmd commandReq
			if r.Type != "shell" {
				if ssh.Unmarshal(r.Payload, &cmd) != nil {
					ok = false
					break
				}
			}
			switch r.Type {
			case "exec":
				req.Command = []string{execShell, "-c", cmd.Command}
			case "subsystem":
				if cmd.Command != "sftp" {
					ok = false
					break
				}
				req.Command, req.TTY = SFTPServer, false
			}
			if ok {
				started = true
				go g.run(ctx, ch, req, resize)
			}
		default:
			ok = false // x11, agent forwarding, signals: not offered
		}
		if r.WantReply {
			r.Reply(ok, nil)
		}
	}
	if !started {
		ch.Close()
	}
}

// run carries one command into the instance and reports its exit status.
func (g *gate) run(ctx context.Context, ch ssh.Channel, req streamproto.ExecRequest, resize chan streamproto.Size) {
	defer ch.Close()
	c, why := g.running(ctx)
	if why != "" {
		fmt.Fprintf(ch.Stderr(), "%s\r\n", why)
		sendExit(ch, 1)
		return
	}
	ws, err := g.m.cfg.Agents.Websocket(ctx, c.ID, "/v1/exec")
	if err != nil {
		fmt.Fprintf(ch.Stderr(), "the agent of compute instance %s did not answer: %v\r\n", c.Name, err)
		sendExit(ch, 255)
		return
	}
	code, err := streamproto.Exec(ctx, ws, req, ch, ch, ch.Stderr(), resize)
	if err != nil {
		if ctx.Err() != nil {
			return // the client went away
		}
		fmt.Fprintf(ch.Stderr(), "chub: %v\r\n", err)
		code = 255
	}
	ch.CloseWrite()
	sendExit(ch, code)
}

func sendExit(ch ssh.Channel, code int) {
	if code < 0 || code > 255 {
		code = 255
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: uint32(code)}))
}

// sendLatest queues a size, dropping the oldest when the queue is full:
// only the last size matters.
func sendLatest(q chan streamproto.Size, s streamproto.Size) {
	for {
		select {
		case q <- s:
			return
		default:
			select {
			case <-q:
			default:
			}
		}
	}
}

func clamp16(v uint32) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}

// setEnv sets name in env, replacing an earlier value.
func setEnv(env []string, name, value string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			env[i] = name + "=" + value
			return env
		}
	}
	return append(env, name+"="+value)
}

// validEnvName accepts the names a shell could export.
func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// connEnv is the SSH_CONNECTION and SSH_CLIENT a login through OpenSSH sets.
func connEnv(sconn *ssh.ServerConn) []string {
	rh, rp, _ := net.SplitHostPort(sconn.RemoteAddr().String())
	lh, lp, _ := net.SplitHostPort(sconn.LocalAddr().String())
	return []string{
		"SSH_CONNECTION=" + strings.Join([]string{rh, rp, lh, lp}, " "),
		"SSH_CLIENT=" + strings.Join([]string{rh, rp, lp}, " "),
	}
}
