package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsLogsOutputsCodeAndPackages runs jobs on one instance: logs
// stream while a job runs and are kept after it; outputs are downloadable
// once it ends, also after the instance stopped; a code snapshot uploaded
// through the blob flow is the job's working directory, with literal
// inputs and environment variables; a job sees a package installed in the
// instance.
func TestJobsLogsOutputsCodeAndPackages(t *testing.T) {
	s := startServer(t)
	c := s.client()
	const inst = "files2"
	create(t, c, inst, "Standard_DS2_v2")

	t.Run("logs stream", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		idleSince := lastActivity(t, c, inst)
		a.submit("logs", commandJob(inst, "for i in 1 2 3 4 5 6; do echo line$i; echo err$i >&2; sleep 1; done"))
		a.waitStatus("logs", chub.JobRunning, 30*time.Second)
		// Outputs are kept when the job ends, not before.
		if code, data := a.outputs("logs", ""); code != http.StatusConflict || decodeError(data).Error.Code != "JobOutputsNotReady" {
			t.Errorf("outputs of a running job: %d %s; want 409 JobOutputsNotReady", code, data)
		}
		resp := a.follow("logs", "stdout")
		defer resp.Body.Close()
		if st := resp.Header.Get("X-Chub-Job-Status"); st != string(chub.JobRunning) {
			t.Errorf("X-Chub-Job-Status: %q; want Running", st)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type of the logs: %q; want text/plain", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) == 1 {
				// The job prints a line a second for 6s: the first one
				// arrives while it runs.
				if j := a.get("logs"); j.Properties.Status.Terminal() {
					t.Errorf("the first line arrived after the job ended (%s); want it streamed while the job runs", j)
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("reading the followed log: %v", err)
		}
		if got, want := strings.Join(lines, ","), "line1,line2,line3,line4,line5,line6"; got != want {
			t.Errorf("followed stdout: %s; want %s", got, want)
		}
		// The stream ends when the job has ended and everything is sent.
		j := a.get("logs")
		if j.Properties.Status != chub.JobCompleted && j.Properties.Status != chub.JobFinalizing {
			t.Errorf("job when its followed log ended: %s; want Finalizing or Completed", j)
		}
		j = a.waitEnd("logs", 30*time.Second)
		if j.Properties.Status != chub.JobCompleted || j.Properties.ExitCode == nil || *j.Properties.ExitCode != 0 {
			t.Errorf("job: %s; want Completed, exit 0", j)
		}
		// A running job is the instance's activity (idle shutdown counts it).
		waitFor(t, 30*time.Second, "the job's activity in lastActivityTime", func() bool {
			at := lastActivity(t, c, inst)
			return at != nil && (idleSince == nil || at.After(*idleSince))
		})
		if got, want := a.logs("logs", "stdout"), "line1\nline2\nline3\nline4\nline5\nline6\n"; got != want {
			t.Errorf("kept stdout: %q; want %q", got, want)
		}
		if got, want := a.logs("logs", "stderr"), "err1\nerr2\nerr3\nerr4\nerr5\nerr6\n"; got != want {
			t.Errorf("kept stderr: %q; want %q", got, want)
		}
		std := a.logs("logs", "std_log")
		last := -1
		for _, l := range []string{"line1", "err1", "line2", "line3", "err3", "line6", "err6"} {
			i := strings.Index(std, l+"\n")
			if i < 0 {
				t.Errorf("std_log lacks %s:\n%s", l, std)
			}
			if strings.HasPrefix(l, "line") {
				if i < last {
					t.Errorf("std_log has %s out of order:\n%s", l, std)
				}
				last = i
			}
		}
		if len(std) != len("line1\n")*6+len("err1\n")*6 {
			t.Errorf("std_log holds %d bytes; want stdout and stderr together (%d):\n%s", len(std), 66, std)
		}
		// An offset reads from there; a followed log of an ended job is all of it.
		if code, _, data := a.call("GET", "/jobs/logs/logs", "stream=stdout&offset=6", nil); code != 200 || string(data) != "line2\nline3\nline4\nline5\nline6\n" {
			t.Errorf("logs from offset 6: %d %q", code, data)
		}
		if code, _, data := a.call("GET", "/jobs/logs/logs", "stream=stderr&follow=true", nil); code != 200 || string(data) != "err1\nerr2\nerr3\nerr4\nerr5\nerr6\n" {
			t.Errorf("followed stderr of an ended job: %d %q", code, data)
		}
		for _, q := range []string{"stream=nope", "stream=stdout&offset=-1", "stream=stdout&offset=x"} {
			if code, _, data := a.call("GET", "/jobs/logs/logs", q, nil); code != 400 {
				t.Errorf("logs?%s: %d %s; want 400", q, code, data)
			}
		}
		if code, _, data := a.call("GET", "/jobs/no-such-job/logs", "stream=stdout", nil); code != 404 {
			t.Errorf("logs of an unknown job: %d %s; want 404", code, data)
		}
	})

	t.Run("outputs", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		job := commandJob(inst, `echo w42 > ${{outputs.model}}/weights.txt && echo '{"acc": 0.9}' > ./outputs/metrics.json && ln -s /etc/passwd ./outputs/passwd-link && mkfifo ./outputs/fifo`)
		job["outputs"] = map[string]any{"model": map[string]any{"jobOutputType": "uri_folder"}}
		a.submit("outs", job)
		j := a.waitEnd("outs", 60*time.Second)
		if j.Properties.Status != chub.JobCompleted {
			t.Fatalf("job: %s; want Completed (stderr: %s)", j, a.logs("outs", "stderr"))
		}
		if o := j.Properties.Outputs["model"]; o == nil || o["jobOutputType"] != "uri_folder" {
			t.Errorf("outputs in the job: %v; want model as uri_folder", j.Properties.Outputs)
		}
		checkOutputs(t, a, "outs")
		// Only regular files and folders are kept: never a link (the server
		// follows nothing an instance wrote) nor a FIFO.
		_, data := a.outputs("outs", "")
		for name, typ := range tarEntries(t, data) {
			if typ != tar.TypeReg && typ != tar.TypeDir {
				t.Errorf("the outputs hold %s of tar type %q; want only regular files and folders", name, typ)
			}
			if strings.Contains(name, "passwd") && typ == tar.TypeReg {
				t.Errorf("the outputs hold %s as a regular file: a link was followed", name)
			}
		}
	})

	t.Run("code uploads refused", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		start := func(name string) string {
			code, _, data := a.call("POST", "/codes/"+name+"/versions/1/startPendingUpload", "", map[string]any{"pendingUploadType": "TemporaryBlobReference"})
			var p struct {
				BlobReferenceForConsumption struct {
					Credential struct{ SASURI string }
				}
			}
			if json.Unmarshal(data, &p); code != http.StatusOK || p.BlobReferenceForConsumption.Credential.SASURI == "" {
				t.Fatalf("startPendingUpload: %d %s", code, data)
			}
			return p.BlobReferenceForConsumption.Credential.SASURI
		}
		anon := &jobAPI{t: t, s: s, hc: a.hc}
		put := func(u string, body []byte) (int, string) {
			resp := anon.request("PUT", u, "", body, http.Header{"X-Ms-Blob-Type": {"BlockBlob"}})
			defer resp.Body.Close()
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return resp.StatusCode, string(data)
		}
		var evil bytes.Buffer
		gz := gzip.NewWriter(&evil)
		tw := tar.NewWriter(gz)
		tw.WriteHeader(&tar.Header{Name: "../escape.py", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		tw.Write([]byte("x\n"))
		tw.Close()
		gz.Close()
		u := start("evil")
		if code, body := put(u, evil.Bytes()); code != http.StatusBadRequest || decodeError([]byte(body)).Error.Code != "InvalidCodeArchive" {
			t.Errorf("upload of a tarball with ../escape.py: %d %s; want 400 InvalidCodeArchive", code, body)
		}
		u = start("twice")
		if code, body := put(strings.SplitN(u, "?", 2)[0], tarGz(t, map[string]string{"a.py": "1\n"})); code < 400 || code >= 500 {
			t.Errorf("upload without the signature: %d %s; want a 4xx", code, body)
		}
		if code, body := put(u+"x", tarGz(t, map[string]string{"a.py": "1\n"})); code < 400 || code >= 500 {
			t.Errorf("upload with a wrong signature: %d %s; want a 4xx", code, body)
		}
		if code, body := put(u, tarGz(t, map[string]string{"a.py": "1\n"})); code != http.StatusCreated {
			t.Fatalf("upload: %d %s; want 201", code, body)
		}
		if code, body := put(u, tarGz(t, map[string]string{"b.py": "2\n"})); code != http.StatusConflict {
			t.Errorf("a second upload to the same URL: %d %s; want 409", code, body)
		}
	})

	t.Run("code snapshot with inputs", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		codeID := a.uploadCode("train", "1", map[string]string{
			"train.py": `import argparse, getpass, os
p = argparse.ArgumentParser()
p.add_argument("--lr")
args = p.parse_args()
print("lr", args.lr)
print("cwd", os.getcwd())
print("user", getpass.getuser())
print("greeting", os.environ.get("GREETING"))
print("run", os.environ.get("AZUREML_RUN_ID"))
print("data", open("data/params.txt").read().strip())
`,
			"data/params.txt": "batch=32\n",
		})
		job := commandJob(inst, "python3 train.py --lr ${{inputs.lr}}")
		job["codeId"] = codeID
		job["inputs"] = map[string]any{"lr": map[string]any{"jobInputType": "literal", "value": "0.01"}}
		job["environmentVariables"] = map[string]string{"GREETING": "hello"}
		job["displayName"] = "train with code"
		j := a.submit("train-1", job)
		if !strings.EqualFold(j.Properties.CodeID, codeID) || j.Properties.ExperimentName != "Default" || j.Properties.DisplayName != "train with code" {
			t.Errorf("submitted job: codeId %q, experiment %q, display name %q; want %q, Default, train with code", j.Properties.CodeID, j.Properties.ExperimentName, j.Properties.DisplayName, codeID)
		}
		j = a.waitEnd("train-1", 60*time.Second)
		out := a.logs("train-1", "stdout")
		if j.Properties.Status != chub.JobCompleted {
			t.Fatalf("job: %s; stdout %q, stderr %q", j, out, a.logs("train-1", "stderr"))
		}
		for _, want := range []string{"lr 0.01\n", "cwd /mnt/chub/jobs/", "user azureuser\n", "greeting hello\n", "run train-1\n", "data batch=32\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout of train.py lacks %q:\n%s", want, out)
			}
		}
		// The azureml:name:version form names the same code.
		job["codeId"] = "azureml:train:1"
		j = a.submit("train-2", job)
		if !strings.EqualFold(j.Properties.CodeID, codeID) {
			t.Errorf("codeId azureml:train:1 stored as %q; want %q", j.Properties.CodeID, codeID)
		}
		if j = a.waitEnd("train-2", 60*time.Second); j.Properties.Status != chub.JobCompleted || !strings.Contains(a.logs("train-2", "stdout"), "run train-2\n") {
			t.Errorf("job with codeId azureml:train:1: %s, stdout %q", j, a.logs("train-2", "stdout"))
		}
	})

	t.Run("a job sees packages installed in the instance", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		whl := wheel(t, "chubjobpkg", "42")
		if out, code := runIn(t, c, inst, "cat > /tmp/chubjobpkg-1.0-py3-none-any.whl && pip install --user --no-index --no-deps --disable-pip-version-check /tmp/chubjobpkg-1.0-py3-none-any.whl 2>&1 && echo home-note > ~/note.txt", whl); code != 0 {
			t.Fatalf("pip install --user in the instance: exit %d:\n%s", code, out)
		}
		a.submit("pkg", commandJob(inst, `python3 -c 'import chubjobpkg; print(chubjobpkg.__file__, chubjobpkg.VALUE)' && cat ~/note.txt`))
		j := a.waitEnd("pkg", 60*time.Second)
		out := a.logs("pkg", "std_log")
		if j.Properties.Status != chub.JobCompleted || !strings.Contains(out, "/home/azureuser/.local/lib/python3") || !strings.Contains(out, " 42\nhome-note\n") {
			t.Errorf("job importing the user's package: %s:\n%s", j, out)
		}
	})

	t.Run("environment", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		// An environment of the instance's own image (the runtime's default).
		if code, _, data := a.call("PUT", "/environments/own/versions/1", "", map[string]any{"properties": map[string]any{"osType": "Linux"}}); code != http.StatusCreated {
			t.Fatalf("PUT environments/own/versions/1: %d %s; want 201", code, data)
		}
		job := commandJob(inst, "echo in-env")
		job["environmentId"] = "azureml:own:1"
		j := a.submit("env-1", job)
		if want := wsPath + "/environments/own/versions/1"; !strings.EqualFold(j.Properties.EnvironmentID, want) {
			t.Errorf("environmentId azureml:own:1 stored as %q; want %q", j.Properties.EnvironmentID, want)
		}
		if j = a.waitEnd("env-1", 60*time.Second); j.Properties.Status != chub.JobCompleted || a.logs("env-1", "stdout") != "in-env\n" {
			t.Errorf("job in the instance's own environment: %s", j)
		}
		job["environmentId"] = "azureml:missing:1"
		if code, data := a.trySubmit("env-2", job); code != http.StatusBadRequest || decodeError(data).Error.Target == "" {
			t.Errorf("job naming a missing environment: %d %s; want 400 with a target", code, data)
		}
	})

	t.Run("refused bodies", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		for _, tc := range []struct {
			what string
			set  func(map[string]any)
		}{
			{"a uri_folder input", func(j map[string]any) {
				j["inputs"] = map[string]any{"data": map[string]any{"jobInputType": "uri_folder", "uri": "azureml://datastores/x/paths/y"}}
			}},
			{"distribution", func(j map[string]any) {
				j["distribution"] = map[string]any{"distributionType": "PyTorch", "processCountPerInstance": 2}
			}},
			{"a Sweep job", func(j map[string]any) { j["jobType"] = "Sweep" }},
			{"an undeclared input in the command", func(j map[string]any) { j["command"] = "echo ${{inputs.nope}}" }},
			{"an unknown property", func(j map[string]any) { j["notAField"] = true }},
			{"a compute that does not exist", func(j map[string]any) { j["computeId"] = computeARM("no-such-instance") }},
			{"a zero timeout", func(j map[string]any) { j["limits"] = map[string]any{"jobLimitsType": "Command", "timeout": "PT0S"} }},
			{"no command", func(j map[string]any) { delete(j, "command") }},
		} {
			job := commandJob(inst, "echo refused")
			tc.set(job)
			code, data := a.trySubmit("refused", job)
			if e := decodeError(data).Error; code != http.StatusBadRequest || e.Code == "" || e.Message == "" {
				t.Errorf("a job with %s: %d %s; want 400 with Azure's error envelope", tc.what, code, data)
			}
		}
		if code, _, _ := a.call("GET", "/jobs/refused", "", nil); code != http.StatusNotFound {
			t.Errorf("GET a job every submit of which was refused: %d; want 404", code)
		}
	})

	t.Run("archive", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		code, h, data := a.call("DELETE", "/jobs/train-2", "", nil)
		if code != http.StatusAccepted || !strings.Contains(h.Get("Location"), "/jobs/train-2") {
			t.Fatalf("DELETE jobs/train-2: %d, Location %q, %s; want 202 with the job's Location", code, h.Get("Location"), data)
		}
		a.wait("train-2", 30*time.Second, "archived", func(j jobResource) bool { return j.Properties.IsArchived })
		names := func(view string) []string {
			_, _, data := a.call("GET", "/jobs", "listViewType="+view, nil)
			var page struct{ Value []jobResource }
			json.Unmarshal(data, &page)
			var out []string
			for _, j := range page.Value {
				out = append(out, j.Name)
			}
			return out
		}
		if got := names("ActiveOnly"); slices.Contains(got, "train-2") || !slices.Contains(got, "train-1") {
			t.Errorf("ActiveOnly list: %v; want train-1 without the archived train-2", got)
		}
		if got := names("ArchivedOnly"); !slices.Equal(got, []string{"train-2"}) {
			t.Errorf("ArchivedOnly list: %v; want only train-2", got)
		}
		if got := names("All"); !slices.Contains(got, "train-2") || !slices.Contains(got, "train-1") {
			t.Errorf("All list: %v; want train-1 and train-2", got)
		}
	})

	t.Run("a huge log is kept bounded", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		// 70 MiB on stdout: over the artifact store's 64 MiB bound of a log.
		a.submit("huge", commandJob(inst, "head -c 73400320 /dev/zero | tr '\\0' a; echo tail-err >&2"))
		j := a.waitEnd("huge", 120*time.Second)
		if j.Properties.Status != chub.JobCompleted {
			t.Fatalf("job printing 70 MiB: %s; want Completed", j)
		}
		code, _, data := a.call("GET", "/jobs/huge/logs", "stream=stdout", nil)
		if code != http.StatusOK || len(data) == 0 || len(data) > 64<<20 || strings.Trim(string(data), "a") != "" {
			t.Errorf("kept stdout of a 70 MiB log: %d, %d bytes; want at most 64 MiB of it", code, len(data))
		}
		t.Logf("kept %d bytes of the 73400320 the job printed", len(data))
		if art := j.Properties.Artifacts; art == nil || !art.Truncated || art.StdoutBytes != int64(len(data)) {
			t.Errorf("artifacts of the job whose log was cut: %+v; want truncated, stdoutBytes %d", art, len(data))
		}
		if got := a.logs("huge", "stderr"); got != "tail-err\n" {
			t.Errorf("kept stderr beside a huge stdout: %q", got)
		}
	})

	t.Run("kept after the instance stops", func(t *testing.T) {
		a := newJobAPI(t, s, s.token())
		act(t, c, inst, chub.OpStop)
		checkOutputs(t, a, "outs")
		if got := a.logs("logs", "stdout"); got != "line1\nline2\nline3\nline4\nline5\nline6\n" {
			t.Errorf("stdout after the instance stopped: %q", got)
		}
	})
}

// checkOutputs downloads the outputs of the job "outs" whole and narrowed
// to the output "model".
func checkOutputs(t *testing.T, a *jobAPI, name string) {
	t.Helper()
	code, data := a.outputs(name, "")
	if code != http.StatusOK {
		t.Fatalf("outputs of %s: %d %s", name, code, data)
	}
	files := untarGz(t, data)
	if files["outputs/model/weights.txt"] != "w42\n" || files["outputs/metrics.json"] != "{\"acc\": 0.9}\n" {
		t.Errorf("outputs of %s: %q; want outputs/model/weights.txt and outputs/metrics.json", name, files)
	}
	code, data = a.outputs(name, "model")
	if code != http.StatusOK {
		t.Fatalf("outputs of %s, name=model: %d %s", name, code, data)
	}
	if files := untarGz(t, data); len(files) != 1 || files["outputs/model/weights.txt"] != "w42\n" {
		t.Errorf("outputs of %s, name=model: %q; want only outputs/model/weights.txt", name, files)
	}
}

// tarEntries lists a tar.gz's entries with their types.
func tarEntries(t *testing.T, data []byte) map[string]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	out := map[string]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("not a tarball: %v", err)
		}
		out[h.Name] = h.Typeflag
	}
}
