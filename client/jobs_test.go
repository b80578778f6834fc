package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/computehub/chub"
)

// testServer is a TLS server with a client that trusts it.
func testServer(t *testing.T, h http.HandlerFunc) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Server: srv.URL, Token: "tok", CACert: ca, Workspace: "ws"})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestJobRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var put map[string]any
	c, srv := testServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/jobs/j1"):
			json.NewDecoder(r.Body).Decode(&put)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"name":"j1","properties":{"jobType":"Command","command":"x","status":"NotStarted","services":{"Studio":{"endpoint":"https://s/#/jobs/j1"}}}}`)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/jobs") && r.URL.Query().Get("$skip") == "":
			io.WriteString(w, `{"value":[{"name":"a"}],"nextLink":"`+"https://"+r.Host+r.URL.Path+`?api-version=x&$skip=1"}`)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/jobs"):
			io.WriteString(w, `{"value":[{"name":"b"}]}`)
		case strings.HasSuffix(r.URL.Path, "/logs"):
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello\n")
		case strings.HasSuffix(r.URL.Path, "/blobs/b1"):
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"b1","size":3,"sha256":"ab"}`)
		case strings.HasSuffix(r.URL.Path, "/outputs"):
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"JobOutputsNotReady","message":"outputs are kept when the job ends"}}`)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	ctx := context.Background()
	code := 3
	j, created, err := c.CreateOrUpdateJob(ctx, "", "j1", JobProperties{JobType: "Command", Command: "x", ComputeID: "/c", Status: chub.JobRunning, ExitCode: &code, StatusMessage: "m"})
	if err != nil || !created || j.StudioURL() != "https://s/#/jobs/j1" {
		t.Fatalf("create: got %+v created=%v err=%v; want a created job with its Studio URL", j, created, err)
	}
	props := put["properties"].(map[string]any)
	for _, ro := range []string{"status", "exitCode", "statusMessage", "services", "isArchived"} {
		if _, ok := props[ro]; ok {
			t.Errorf("PUT body has read-only %s: %v", ro, props)
		}
	}
	js, err := c.ListJobs(ctx, "", ListJobsOptions{View: chub.JobViewAll, Tag: "t=1", Compute: "ci1"})
	if err != nil || len(js) != 2 || js[0].Name != "a" || js[1].Name != "b" {
		t.Errorf("list: got %+v, %v; want a then b over two pages", js, err)
	}
	rc, err := c.StreamJobLogs(ctx, "", "j1", "", 5, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello\n" {
		t.Errorf("logs: got %q; want hello", b)
	}
	if _, err := c.UploadBlob(ctx, srv.URL+"/chub/v1/blobs/b1?sig=s", strings.NewReader("abc")); err != nil {
		t.Errorf("upload: %v", err)
	}
	if _, err := c.UploadBlob(ctx, "http://example.com/b?sig=s", strings.NewReader("abc")); err == nil {
		t.Errorf("upload to http: got no error")
	}
	_, err = c.DownloadJobOutputs(ctx, "", "j1", "model")
	if e, ok := err.(*Error); !ok || e.Code != "JobOutputsNotReady" || e.StatusCode != 409 {
		t.Errorf("outputs: got %v; want the 409 JobOutputsNotReady", err)
	}
	if err := c.CancelJob(ctx, "", "j1"); err != nil {
		t.Errorf("cancel: %v", err)
	}
	if _, err := c.StopCompute(ctx, "", "ci1", true); err != nil {
		t.Errorf("stop: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"PUT /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/jobs/j1?api-version=" + APIVersion + " auth=Bearer tok",
		"GET /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/jobs?compute=ci1&listViewType=All&tag=t%3D1&api-version=" + APIVersion + " auth=Bearer tok",
		"GET /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/jobs?api-version=x&$skip=1 auth=Bearer tok",
		"GET /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/jobs/j1/logs?follow=true&offset=5&stream=std_log&api-version=" + APIVersion + " auth=Bearer tok",
		"PUT /chub/v1/blobs/b1?sig=s auth=",
		"GET /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/jobs/j1/outputs?name=model&api-version=" + APIVersion + " auth=Bearer tok",
		"POST /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/jobs/j1/cancel?api-version=" + APIVersion + " auth=Bearer tok",
		"POST /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/ci1/stop?cancelJobs=true&api-version=" + APIVersion + " auth=Bearer tok",
	}
	if len(seen) != len(want) {
		t.Fatalf("requests: got\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("request %d: got %s; want %s", i, seen[i], want[i])
		}
	}
}
