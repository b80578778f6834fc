package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsCLI types the az ml v2 way: chub job create --file job.yml (code,
// compute, inputs, outputs, environment variables, names), chub job stream
// (follows the logs and exits with the job's code) and chub job download;
// the flags form (--compute --code -- COMMAND) with --stream; job cancel.
func TestJobsCLI(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "cli1"
	create(t, c, inst, "Standard_DS1_v2")
	dir := t.TempDir()
	writeFile := func(p, body string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("src/train.py", `import argparse, os
p = argparse.ArgumentParser()
p.add_argument("--lr")
p.add_argument("--out")
args = p.parse_args()
print("lr", args.lr, flush=True)
print("greeting", os.environ.get("GREETING"), flush=True)
with open(os.path.join(args.out, "weights.txt"), "w") as f:
    f.write("w" + args.lr + "\n")
`)
	writeFile("job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
name: cli-train
display_name: CLI training
experiment_name: cli-exp
description: trains from the CLI
compute: azureml:`+inst+`
code: ./src
command: >-
  python3 train.py --lr ${{inputs.lr}} --out ${{outputs.model}}
inputs:
  lr: 0.05
outputs:
  model:
    type: uri_folder
environment_variables:
  GREETING: from-yaml
`)
	writeFile("fail.yml", `name: cli-fail
compute: azureml:`+inst+`
command: echo failing; exit 3
`)

	out, stderr, code := s.chub(t, "", "job", "create", "--file", filepath.Join(dir, "job.yml"))
	if code != 0 {
		t.Fatalf("job create --file job.yml: exit %d\n%s\n%s", code, out, stderr)
	}
	a := newJobAPI(t, s, s.token())
	j := a.get("cli-train")
	p := j.Properties
	if p.DisplayName != "CLI training" || p.ExperimentName != "cli-exp" || p.Description != "trains from the CLI" ||
		!strings.HasSuffix(strings.ToLower(p.ComputeID), "/computes/"+inst) || p.CodeID == "" || p.EnvironmentVariables["GREETING"] != "from-yaml" {
		t.Errorf("the job made from job.yml: display %q, experiment %q, description %q, compute %q, code %q, env %v",
			p.DisplayName, p.ExperimentName, p.Description, p.ComputeID, p.CodeID, p.EnvironmentVariables)
	}
	if in := p.Inputs["lr"]; in == nil || in["value"] != "0.05" {
		t.Errorf("inputs of the job made from job.yml: %v; want lr 0.05", p.Inputs)
	}

	out, stderr, code = s.chub(t, "", "job", "stream", "--name", "cli-train")
	if code != 0 || !strings.Contains(out, "lr 0.05\n") || !strings.Contains(out, "greeting from-yaml\n") {
		t.Errorf("job stream: exit %d; want 0 and the job's log\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if j := a.get("cli-train"); j.Properties.Status != chub.JobCompleted {
		t.Errorf("job after stream returned: %s; want Completed", j)
	}

	dl := filepath.Join(t.TempDir(), "dl")
	out, stderr, code = s.chub(t, "", "job", "download", "--name", "cli-train", "--download-path", dl)
	if code != 0 {
		t.Fatalf("job download: exit %d\n%s\n%s", code, out, stderr)
	}
	var found []string
	filepath.Walk(dl, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && info.Name() == "weights.txt" {
			if b, _ := os.ReadFile(p); string(b) == "w0.05\n" {
				found = append(found, p)
			}
		}
		return nil
	})
	if len(found) != 1 || !strings.Contains(filepath.ToSlash(found[0]), "model/weights.txt") {
		t.Errorf("job download into %s: weights.txt holding w0.05 found at %v; want once, under model/", dl, found)
	}

	if out, _, code := s.chub(t, "", "job", "list"); code != 0 || !strings.Contains(out, "cli-train") {
		t.Errorf("job list: exit %d:\n%s", code, out)
	}
	if out, _, code := s.chub(t, "", "job", "show", "--name", "cli-train"); code != 0 || !strings.Contains(out, "Completed") {
		t.Errorf("job show: exit %d:\n%s", code, out)
	}

	// The flags form, followed to its end with --stream.
	out, stderr, code = s.chub(t, "", "job", "create", "--compute", inst, "--code", filepath.Join(dir, "src"), "--name", "cli-flags",
		"--input", "lr=0.2", "--output-name", "model", "--env", "GREETING=from-flags", "--stream",
		"--", "python3", "train.py", "--lr", "${{inputs.lr}}", "--out", "${{outputs.model}}")
	if code != 0 || !strings.Contains(out, "lr 0.2\n") || !strings.Contains(out, "greeting from-flags\n") {
		t.Errorf("job create --compute --code --stream -- python3 train.py: exit %d; want 0 and the job's log\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if j := a.get("cli-flags"); j.Properties.Status != chub.JobCompleted || j.Properties.CodeID == "" {
		t.Errorf("job made from flags: %s, code %q; want Completed with a code", j, j.Properties.CodeID)
	}

	// Cancel waits until the job has ended.
	if out, stderr, code := s.chub(t, "", "job", "create", "--compute", inst, "--name", "cli-cancel", "--", "sleep", "60"); code != 0 {
		t.Fatalf("job create -- sleep 60: exit %d\n%s\n%s", code, out, stderr)
	}
	a.waitStatus("cli-cancel", chub.JobRunning, 30*time.Second)
	if out, stderr, code := s.chub(t, "", "job", "cancel", "--name", "cli-cancel"); code != 0 || !strings.Contains(stderr, "Canceled") {
		t.Errorf("job cancel: exit %d\n%s\n%s", code, out, stderr)
	}
	if j := a.get("cli-cancel"); j.Properties.Status != chub.JobCanceled {
		t.Errorf("job after chub job cancel returned: %s; want Canceled", j)
	}
	if _, _, code := s.chub(t, "", "job", "stream", "--name", "cli-cancel"); code != 130 {
		t.Errorf("job stream of a canceled job: exit %d; want 130", code)
	}

	// A failing job: stream exits with its code.
	if out, stderr, code := s.chub(t, "", "job", "create", "--file", filepath.Join(dir, "fail.yml")); code != 0 {
		t.Fatalf("job create --file fail.yml: exit %d\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = s.chub(t, "", "job", "stream", "--name", "cli-fail")
	if code != 3 || !strings.Contains(out, "failing\n") {
		t.Errorf("job stream of a job exiting 3: exit %d; want 3 and its log\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if j := a.waitEnd("cli-fail", 30*time.Second); j.Properties.Status != chub.JobFailed || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 3 {
		t.Errorf("job exiting 3: %s; want Failed, exit code 3", j)
	}
}
