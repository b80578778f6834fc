package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// jobsVersion is the reference api-version of the jobs API.
const jobsVersion = "2024-04-01"

// jobAPI drives the jobs API over raw HTTP as one user, the way any ARM
// client would (the bearer token, the api-version, JSON bodies).
type jobAPI struct {
	t   *testing.T
	s   *server
	tok string
	hc  *http.Client
}

func newJobAPI(t *testing.T, s *server, tok string) *jobAPI {
	t.Helper()
	hc, err := s.httpClient()
	if err != nil {
		t.Fatal(err)
	}
	return &jobAPI{t: t, s: s, tok: tok, hc: hc}
}

// jobResource is the job as the API renders it.
type jobResource struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		JobType              string                    `json:"jobType"`
		Command              string                    `json:"command"`
		ComputeID            string                    `json:"computeId"`
		CodeID               string                    `json:"codeId"`
		EnvironmentID        string                    `json:"environmentId"`
		EnvironmentVariables map[string]string         `json:"environmentVariables"`
		Inputs               map[string]map[string]any `json:"inputs"`
		Outputs              map[string]map[string]any `json:"outputs"`
		Limits               map[string]any            `json:"limits"`
		DisplayName          string                    `json:"displayName"`
		ExperimentName       string                    `json:"experimentName"`
		Description          string                    `json:"description"`
		Tags                 map[string]string         `json:"tags"`
		Status               chub.JobStatus            `json:"status"`
		IsArchived           bool                      `json:"isArchived"`
		Services             map[string]*struct {
			JobServiceType string `json:"jobServiceType"`
			Endpoint       string `json:"endpoint"`
		} `json:"services"`
		StatusMessage string `json:"statusMessage"`
		ExitCode      *int   `json:"exitCode"`
		Error         *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		StartTime     *time.Time `json:"startTime"`
		EndTime       *time.Time `json:"endTime"`
		QueuePosition *int       `json:"queuePosition"`
		// Artifacts is what the server kept of the ended job.
		Artifacts *chub.JobArtifacts `json:"artifacts"`
	} `json:"properties"`
}

func (j jobResource) String() string {
	p := j.Properties
	s := fmt.Sprintf("%s: %s", j.Name, p.Status)
	if p.StatusMessage != "" {
		s += fmt.Sprintf(" (%s)", p.StatusMessage)
	}
	if p.ExitCode != nil {
		s += fmt.Sprintf(" exit %d", *p.ExitCode)
	}
	if p.Error != nil {
		s += fmt.Sprintf(" error %s: %s", p.Error.Code, p.Error.Message)
	}
	return s
}

// computeARM is the ARM id of an instance of the default workspace.
func computeARM(name string) string { return wsPath + "/computes/" + name }

// commandJob is the body of a command job running command on compute.
func commandJob(compute, command string) map[string]any {
	return map[string]any{"jobType": "Command", "command": command, "computeId": computeARM(compute)}
}

// request sends one request to the server: path is under the workspace
// when it starts with "/jobs", "/codes", "/environments" or "/computes",
// else absolute ("/subscriptions/..." or a full https URL).
func (a *jobAPI) request(method, path, query string, body any, header http.Header) *http.Response {
	a.t.Helper()
	u := path
	if !strings.HasPrefix(path, "https://") {
		if !strings.HasPrefix(path, "/subscriptions/") && !strings.HasPrefix(path, "/chub/") {
			u = wsPath + path
		}
		u = "https://" + a.s.addr + u
	}
	if !strings.Contains(u, "api-version=") && !strings.Contains(u, "/chub/v1/blobs/") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "api-version=" + jobsVersion
	}
	if query != "" {
		u += "&" + query
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if a.tok != "" {
		req.Header.Set("Authorization", "Bearer "+a.tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp
}

// call sends a request and reads the whole answer.
func (a *jobAPI) call(method, path, query string, body any) (int, http.Header, []byte) {
	a.t.Helper()
	resp := a.request(method, path, query, body, nil)
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		a.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, data
}

// apiError is Azure's error envelope.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
}

func decodeError(data []byte) apiError {
	var e apiError
	json.Unmarshal(data, &e)
	return e
}

// trySubmit PUTs a job and returns the status and body.
func (a *jobAPI) trySubmit(name string, props map[string]any) (int, []byte) {
	a.t.Helper()
	code, _, data := a.call("PUT", "/jobs/"+name, "", map[string]any{"properties": props})
	return code, data
}

// submit PUTs a new job and fails the test unless it is created (201).
func (a *jobAPI) submit(name string, props map[string]any) jobResource {
	a.t.Helper()
	code, data := a.trySubmit(name, props)
	if code != http.StatusCreated {
		a.t.Fatalf("PUT jobs/%s: %d %s; want 201", name, code, data)
	}
	var j jobResource
	if err := json.Unmarshal(data, &j); err != nil {
		a.t.Fatalf("PUT jobs/%s: %v: %s", name, err, data)
	}
	return j
}

// get reads one job.
func (a *jobAPI) get(name string) jobResource {
	a.t.Helper()
	code, _, data := a.call("GET", "/jobs/"+name, "", nil)
	if code != http.StatusOK {
		a.t.Fatalf("GET jobs/%s: %d %s", name, code, data)
	}
	var j jobResource
	if err := json.Unmarshal(data, &j); err != nil {
		a.t.Fatalf("GET jobs/%s: %v: %s", name, err, data)
	}
	return j
}

// list lists the jobs of the workspace on one instance (every view),
// following nextLink.
func (a *jobAPI) list(compute string) []jobResource {
	a.t.Helper()
	var all []jobResource
	next := "https://" + a.s.addr + wsPath + "/jobs?api-version=" + jobsVersion + "&listViewType=All&compute=" + url.QueryEscape(compute)
	for pages := 0; next != ""; pages++ {
		if pages > 100 {
			a.t.Fatalf("list jobs: more than 100 pages")
		}
		code, _, data := a.call("GET", next, "", nil)
		if code != http.StatusOK {
			a.t.Fatalf("GET %s: %d %s", next, code, data)
		}
		var page struct {
			Value    []jobResource `json:"value"`
			NextLink string        `json:"nextLink"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			a.t.Fatalf("GET %s: %v: %s", next, err, data)
		}
		all = append(all, page.Value...)
		next = page.NextLink
	}
	return all
}

// wait polls a job until cond holds.
func (a *jobAPI) wait(name string, timeout time.Duration, what string, cond func(jobResource) bool) jobResource {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := a.get(name)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out after %v waiting for job %s to be %s; it is %s", timeout, name, what, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus waits for a job to reach status.
func (a *jobAPI) waitStatus(name string, status chub.JobStatus, timeout time.Duration) jobResource {
	a.t.Helper()
	return a.wait(name, timeout, string(status), func(j jobResource) bool { return j.Properties.Status == status })
}

// waitEnd waits for a job to reach a terminal status.
func (a *jobAPI) waitEnd(name string, timeout time.Duration) jobResource {
	a.t.Helper()
	return a.wait(name, timeout, "ended", func(j jobResource) bool { return j.Properties.Status.Terminal() })
}

// logs reads a whole kept (or current) log of a job.
func (a *jobAPI) logs(name, stream string) string {
	a.t.Helper()
	code, _, data := a.call("GET", "/jobs/"+name+"/logs", "stream="+stream, nil)
	if code != http.StatusOK {
		a.t.Fatalf("GET jobs/%s/logs?stream=%s: %d %s", name, stream, code, data)
	}
	return string(data)
}

// follow opens the followed log stream of a job.
func (a *jobAPI) follow(name, stream string) *http.Response {
	a.t.Helper()
	resp := a.request("GET", "/jobs/"+name+"/logs", "stream="+stream+"&follow=true", nil, nil)
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		a.t.Fatalf("GET jobs/%s/logs?follow=true: %d %s", name, resp.StatusCode, data)
	}
	return resp
}

// outputs downloads a job's outputs (name "" for all of them).
func (a *jobAPI) outputs(name, output string) (int, []byte) {
	a.t.Helper()
	q := ""
	if output != "" {
		q = "name=" + url.QueryEscape(output)
	}
	code, _, data := a.call("GET", "/jobs/"+name+"/outputs", q, nil)
	return code, data
}

// cancel asks for a job's cancel and checks the 202 and its Location.
func (a *jobAPI) cancel(name string) {
	a.t.Helper()
	code, h, data := a.call("POST", "/jobs/"+name+"/cancel", "", nil)
	if code != http.StatusAccepted {
		a.t.Fatalf("POST jobs/%s/cancel: %d %s; want 202", name, code, data)
	}
	if loc := h.Get("Location"); !strings.Contains(loc, "/jobs/"+name) {
		a.t.Errorf("cancel's Location %q does not name the job %s", loc, name)
	}
}

// stopCancelingJobs stops an instance with ?cancelJobs=true (through the
// Go client) and waits for the operation.
func (a *jobAPI) stopCancelingJobs(c *client.Client, compute string) {
	a.t.Helper()
	op, err := c.StopCompute(ctx(a.t), "", compute, true)
	if err != nil || op == nil {
		a.t.Fatalf("stop %s with cancelJobs: operation %v, %v", compute, op, err)
	}
	if _, err := c.Wait(ctx(a.t), op, "", compute, nil); err != nil {
		a.t.Fatalf("stop %s with cancelJobs: %v", compute, err)
	}
}

// uploadCode uploads files as a code version through the blob flow
// (startPendingUpload, PUT to the SAS URI without a bearer, PUT the
// version with codeUri) and returns the version's ARM id.
func (a *jobAPI) uploadCode(name, version string, files map[string]string) string {
	a.t.Helper()
	path := "/codes/" + name + "/versions/" + version
	code, _, data := a.call("POST", path+"/startPendingUpload", "", map[string]any{"pendingUploadType": "TemporaryBlobReference"})
	if code != http.StatusOK {
		a.t.Fatalf("startPendingUpload: %d %s", code, data)
	}
	var pending struct {
		BlobReferenceForConsumption struct {
			BlobURI    string `json:"blobUri"`
			Credential struct {
				CredentialType string `json:"credentialType"`
				SASURI         string `json:"sasUri"`
			} `json:"credential"`
		} `json:"blobReferenceForConsumption"`
		PendingUploadID string `json:"pendingUploadId"`
	}
	if err := json.Unmarshal(data, &pending); err != nil || pending.BlobReferenceForConsumption.Credential.SASURI == "" {
		a.t.Fatalf("startPendingUpload: %v: %s", err, data)
	}
	ref := pending.BlobReferenceForConsumption
	// The SAS URI is the credential: no bearer token.
	anon := &jobAPI{t: a.t, s: a.s, hc: a.hc}
	resp := anon.request("PUT", ref.Credential.SASURI, "", tarGz(a.t, files), http.Header{"X-Ms-Blob-Type": {"BlockBlob"}, "Content-Type": {"application/gzip"}})
	blobData, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		a.t.Fatalf("PUT the code blob: %d %s; want 201", resp.StatusCode, blobData)
	}
	code, _, data = a.call("PUT", path, "", map[string]any{"properties": map[string]any{"codeUri": ref.BlobURI}})
	if code != http.StatusCreated && code != http.StatusOK {
		a.t.Fatalf("PUT %s: %d %s", path, code, data)
	}
	return wsPath + path
}

// tarGz packs files (path → content) into a gzip'd tarball.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// untarGz reads the regular files of a tar.gz (path → content).
func untarGz(t *testing.T, data []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the outputs are not gzip (%d bytes: %q): %v", len(data), tail(string(data), 200), err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the outputs are not a tarball: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = string(b)
	}
	return out
}

// runIn execs a script in an instance with stdin.
func runIn(t *testing.T, c *client.Client, name, script string, stdin []byte) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code, err := c.Exec(ctx(t), "", name, client.ExecOptions{Command: []string{"/bin/sh", "-c", script}, Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("exec %q in %s: %v", script, name, err)
	}
	return out.String(), code
}

// waitState waits for an instance to show state.
func waitState(t *testing.T, c *client.Client, name string, want chub.State, timeout time.Duration) {
	t.Helper()
	var got chub.State
	deadline := time.Now().Add(timeout)
	for {
		if got = state(t, c, name); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s is %s after %v; want %s", name, got, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines logs the server's log lines that mention any of the words (for
// a failure's evidence; the harness prints only the log's tail).
func logLines(t *testing.T, s *server, words ...string) {
	t.Helper()
	var out []string
	for _, l := range strings.Split(s.log.String(), "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	t.Logf("server log lines mentioning %v:\n%s", words, strings.Join(out, "\n"))
}
