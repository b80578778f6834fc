package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chub runs the CLI binary against the server and returns stdout, stderr
// and the exit code.
func (s *server) chub(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return s.chubAs(t, s.token(), stdin, args...)
}

// chubAs runs the CLI with another user's token.
func (s *server) chubAs(t *testing.T, token, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(chubBin, args...)
	cmd.Env = append(os.Environ(), "CHUB_SERVER=https://"+s.addr, "CHUB_TOKEN="+token,
		"CHUB_CA_CERT="+filepath.Join(s.dataDir, "tls", "ca.crt"), "CHUB_CONFIG="+filepath.Join(t.TempDir(), "none.json"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestCLISeedCommands types the seed's commands as a user would.
func TestCLISeedCommands(t *testing.T) {
	s := startServer(t)
	_, stderr, code := s.chub(t, "", "computetarget", "create", "computeinstance", "-n", "instance", "-s", "STANDARD_D3_V2", "-v")
	if code != 0 || !strings.Contains(stderr, "Creating") || !strings.Contains(stderr, "Running") || !strings.Contains(stderr, `Succeeded: compute instance "instance" is Running`) {
		t.Fatalf("create: exit %d, progress:\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"computetarget", "stop", "computeinstance", "-n", "instance", "-v"},
		{"computetarget", "start", "computeinstance", "-n", "instance", "-v"},
		{"computetarget", "restart", "computeinstance", "-n", "instance", "-v"},
		{"computetarget", "computeinstance", "stop", "-n", "instance"},
		{"computetarget", "computeinstance", "start", "-n", "instance"},
	} {
		if _, stderr, code := s.chub(t, "", args...); code != 0 || !strings.Contains(stderr, "Succeeded") {
			t.Fatalf("%v: exit %d:\n%s", args, code, stderr)
		}
	}
	out, _, code := s.chub(t, "", "computetarget", "show", "-n", "instance", "--output", "json")
	var ci struct {
		Properties struct {
			Properties struct {
				State, VMSize string
				LastOperation struct{ OperationName string }
			}
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &ci) != nil || ci.Properties.Properties.State != "Running" || ci.Properties.Properties.VMSize != "Standard_D3_v2" || ci.Properties.Properties.LastOperation.OperationName != "Start" {
		t.Fatalf("show -o json: exit %d: %s", code, out)
	}
	if out, _, _ := s.chub(t, "", "computetarget", "list"); !strings.Contains(out, "instance") || !strings.Contains(out, "Running") {
		t.Fatalf("list:\n%s", out)
	}
	// exec streams output, forwards stdin and exits with the command's code.
	out, _, code = s.chub(t, "hello from stdin\n", "computetarget", "computeinstance", "exec", "-n", "instance", "--", "sh", "-c", "cat; echo to-stderr >&2; exit 7")
	if code != 7 || out != "hello from stdin\n" {
		t.Fatalf("exec: exit %d, stdout %q; want 7 and the stdin echoed", code, out)
	}
	if out, _, code := s.chub(t, "", "computetarget", "computeinstance", "exec", "-n", "instance", "--", "whoami"); code != 0 || out != "azureuser\n" {
		t.Fatalf("exec whoami: %d %q", code, out)
	}
	// A refused operation says why and exits non-zero.
	_, stderr, code = s.chub(t, "", "computetarget", "start", "computeinstance", "-n", "instance")
	if code == 0 || !strings.Contains(stderr, "it is Running") || !strings.Contains(stderr, "409") {
		t.Fatalf("start of a running instance: exit %d: %s", code, stderr)
	}
	if _, stderr, code := s.chub(t, "", "computetarget", "delete", "-n", "instance", "-v"); code != 0 || !strings.Contains(stderr, "deleted") {
		t.Fatalf("delete: exit %d: %s", code, stderr)
	}
	if _, stderr, code := s.chub(t, "", "computetarget", "show", "-n", "instance"); code == 0 || !strings.Contains(stderr, "ResourceNotFound") {
		t.Fatalf("show after delete: exit %d: %s", code, stderr)
	}
}
