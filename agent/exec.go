package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/computehub/chub/streamproto"
)

// defaultPath is the PATH of every command the agent runs.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// drainGrace is how long output may still be read after a command exits
// (background processes may keep its pipes open forever).
const drainGrace = 500 * time.Millisecond

// hangupGrace is how long a command whose client went away has between
// SIGHUP and SIGKILL.
const hangupGrace = 5 * time.Second

// execSession runs the command of one session and relays its streams.
func (a *Agent) execSession(ctx context.Context, s *streamproto.Session) {
	req := s.Request
	name := req.User
	if name == "" {
		name = a.cfg.User
	}
	acct, err := lookupAccount(a.etc("passwd"), a.etc("group"), name)
	if err != nil {
		s.Fail(err.Error())
		return
	}
	env := commandEnv(acct, req)
	argv := req.Command
	if len(argv) == 0 {
		argv = []string{acct.Shell, "-l"}
	}
	dir := req.WorkDir
	if dir == "" {
		dir = acct.Home
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if req.WorkDir != "" {
			s.Fail(fmt.Sprintf("working directory %s: not a directory", req.WorkDir))
			return
		}
		dir = "/"
	}
	prog, err := lookPath(argv[0], envValue(env, "PATH"), dir)
	if err != nil {
		fmt.Fprintf(s.Writer(streamproto.Stderr), "chub: %s: %v\r\n", argv[0], err)
		code := 127
		if errors.Is(err, os.ErrPermission) {
			code = 126
		}
		s.Exit(code)
		return
	}

	attr := &syscall.SysProcAttr{Setsid: true}
	if acct.UID != 0 || acct.GID != 0 {
		attr.Credential = &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups}
	}
	var (
		files     []*os.File
		childEnds []*os.File
		stdinW    io.WriteCloser
		stdoutR   *os.File
		stderrR   *os.File
		master    *os.File
	)
	closeAll := func(fs ...*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	if req.TTY {
		m, sl, err := openPTY()
		if err != nil {
			s.Fail(err.Error())
			return
		}
		master = m
		if req.Cols > 0 && req.Rows > 0 {
			setSize(master, req.Cols, req.Rows)
		}
		attr.Setctty = true
		attr.Ctty = 0
		files = []*os.File{sl, sl, sl}
		childEnds = []*os.File{sl}
		stdinW, stdoutR = master, master
	} else {
		inR, inW, err1 := os.Pipe()
		outR, outW, err2 := os.Pipe()
		errR, errW, err3 := os.Pipe()
		if err := errors.Join(err1, err2, err3); err != nil {
			closeAll(inR, inW, outR, outW, errR, errW)
			s.Fail(err.Error())
			return
		}
		files = []*os.File{inR, outW, errW}
		childEnds = files
		stdinW, stdoutR, stderrR = inW, outR, errR
	}

	var pid int
	exited, err := a.reaper.start(func() (int, error) {
		p, err := os.StartProcess(prog, argv, &os.ProcAttr{Dir: dir, Env: env, Files: files, Sys: attr})
		if err != nil {
			return 0, err
		}
		pid = p.Pid
		p.Release()
		return pid, nil
	})
	closeAll(childEnds...)
	if err != nil {
		closeAll(master, stdoutR, stderrR)
		if stdinW != nil && master == nil {
			stdinW.Close()
		}
		fmt.Fprintf(s.Writer(streamproto.Stderr), "chub: %s: %v\r\n", argv[0], err)
		s.Exit(126)
		return
	}
	a.log.Debug("exec", "pid", pid, "user", acct.Name, "argv", argv, "tty", req.TTY)
	a.touch("exec")

	var outputs sync.WaitGroup
	copyOut := func(ch streamproto.Channel, r *os.File) {
		defer outputs.Done()
		io.Copy(s.Writer(ch), r) // a pty master ends with EIO: same as EOF here
	}
	outputs.Add(1)
	go copyOut(streamproto.Stdout, stdoutR)
	if stderrR != nil {
		outputs.Add(1)
		go copyOut(streamproto.Stderr, stderrR)
	}

	clientGone := make(chan struct{})
	inputCtx, stopInput := context.WithCancel(ctx)
	defer stopInput()
	go func() {
		defer close(clientGone)
		for {
			in, err := s.ReadInput(inputCtx)
			if err != nil {
				return
			}
			switch {
			case in.Data != nil:
				a.touch("exec") // typing into an exec (an SSH shell) is use
				stdinW.Write(in.Data)
			case in.Control.Type == streamproto.TypeResize && master != nil:
				setSize(master, in.Control.Cols, in.Control.Rows)
			case in.Control.Type == streamproto.TypeEOF && master == nil:
				stdinW.Close()
			}
		}
	}()

	var ws syscall.WaitStatus
	select {
	case ws = <-exited:
	case <-clientGone:
		// Nobody is listening any more: hang the command up.
		syscall.Kill(-pid, syscall.SIGHUP)
		select {
		case ws = <-exited:
		case <-time.After(hangupGrace):
			syscall.Kill(-pid, syscall.SIGKILL)
			ws = <-exited
		}
	}

	done := make(chan struct{})
	go func() { outputs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainGrace):
	}
	closeAll(master, stdoutR, stderrR)
	if master == nil {
		stdinW.Close()
	}
	<-done
	s.Exit(exitCode(ws))
}

// exitCode turns a wait status into a shell-style exit code.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return -1
}

// commandEnv is the environment of a command run for acct.
func commandEnv(acct account, req streamproto.ExecRequest) []string {
	env := []string{
		"HOME=" + acct.Home,
		"USER=" + acct.Name,
		"LOGNAME=" + acct.Name,
		"SHELL=" + acct.Shell,
		"PATH=" + defaultPath,
		"LANG=C.UTF-8",
	}
	if req.TTY {
		env = append(env, "TERM=xterm-256color")
	}
	// Later entries override earlier ones.
	index := map[string]int{}
	out := env[:0:0]
	for _, kv := range append(env, req.Env...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPath finds the program file as a shell would with PATH path.
func lookPath(file, path, dir string) (string, error) {
	if strings.Contains(file, "/") {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		return file, checkExecutable(file)
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		if err := checkExecutable(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("command not found")
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("command not found")
		}
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: not executable", os.ErrPermission)
	}
	return nil
}
