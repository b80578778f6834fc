package agentclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// fakeJobAgent is an honest agent for the client's calls: it records what
// it was asked and answers a status of the job named in the path.
type fakeJobAgent struct {
	mu    sync.Mutex
	calls []string
	body  string
}

func (f *fakeJobAgent) handler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
		f.body = string(b)
		f.mu.Unlock()
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/jobs"), "/")
		switch {
		case r.URL.Path == "/v1/jobs":
			json.NewEncoder(w).Encode(jobproto.List{Jobs: []jobproto.Status{{ID: "a", State: "created"}, {ID: "b", State: "running", PID: 7}}})
		case len(parts) >= 2 && parts[1] == "gone":
			http.Error(w, "no job gone", http.StatusNotFound)
		case len(parts) == 3 && parts[2] == "logs":
			io.WriteString(w, "log of "+parts[1]+" "+r.URL.RawQuery)
		case len(parts) == 3 && parts[2] == "outputs":
			io.WriteString(w, "tar of "+parts[1])
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			st := jobproto.Status{ID: parts[1], State: jobproto.StateCreated}
			if len(parts) == 3 && (parts[2] == "start" || parts[2] == "go") {
				st.State, st.PID = jobproto.StateHeld, 42
				if parts[2] == "go" {
					st.State = jobproto.StateRunning
				}
			}
			json.NewEncoder(w).Encode(st)
		}
	}
}

func (f *fakeJobAgent) last() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return "", ""
	}
	return f.calls[len(f.calls)-1], f.body
}

func TestJobCalls(t *testing.T) {
	f := &fakeJobAgent{}
	c := hostileAgent(t, f.handler())
	ctx := context.Background()
	tests := []struct {
		name      string
		call      func() (jobproto.Status, error)
		wantCall  string
		wantState string
	}{
		{"put", func() (jobproto.Status, error) {
			return c.PutJob(ctx, "i", jobproto.Spec{ID: "j1", Command: "echo hi", Timeout: time.Second})
		}, "PUT /v1/jobs/j1", "created"},
		{"start", func() (jobproto.Status, error) { return c.StartJob(ctx, "i", "j1") }, "POST /v1/jobs/j1/start", "held"},
		{"go", func() (jobproto.Status, error) { return c.GoJob(ctx, "i", "j1") }, "POST /v1/jobs/j1/go", "running"},
		{"cancel", func() (jobproto.Status, error) { return c.CancelJob(ctx, "i", "j1") }, "POST /v1/jobs/j1/cancel", "created"},
		{"status", func() (jobproto.Status, error) { return c.JobStatus(ctx, "i", "j1") }, "GET /v1/jobs/j1", "created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if call, _ := f.last(); call != tt.wantCall || st.State != tt.wantState || st.ID != "j1" {
				t.Errorf("got call %q, status %+v; want %q, state %s", call, st, tt.wantCall, tt.wantState)
			}
		})
	}
	if _, body := f.last(); body != "" {
		t.Errorf("status call sent a body %q", body)
	}
	if _, err := c.PutJob(ctx, "i", jobproto.Spec{ID: "j1", Command: "x"}); err != nil {
		t.Fatal(err)
	}
	var sent jobproto.Spec
	if _, body := f.last(); json.Unmarshal([]byte(body), &sent) != nil || sent.Command != "x" {
		t.Errorf("PutJob sent %q", body)
	}

	list, err := c.ListJobs(ctx, "i")
	if err != nil || len(list) != 2 || list[1].PID != 7 {
		t.Errorf("ListJobs = %+v, %v", list, err)
	}

	_, err = c.JobStatus(ctx, "i", "gone")
	if !chub.IsNotFound(err) {
		t.Errorf("JobStatus of an unknown job: %v; want a not-found error", err)
	}
	if err := c.DeleteJob(ctx, "i", "gone"); err != nil {
		t.Errorf("DeleteJob of an unknown job: %v; want nil", err)
	}
	if err := c.DeleteJob(ctx, "i", "j1"); err != nil {
		t.Errorf("DeleteJob: %v", err)
	}
	if call, _ := f.last(); call != "DELETE /v1/jobs/j1" {
		t.Errorf("DeleteJob called %q", call)
	}
	if err := c.PutJobCode(ctx, "i", "j1", strings.NewReader("tarball")); err != nil {
		t.Errorf("PutJobCode: %v", err)
	}
	if call, body := f.last(); call != "PUT /v1/jobs/j1/code" || body != "tarball" {
		t.Errorf("PutJobCode sent %q %q", call, body)
	}
	if err := c.PutJobCode(ctx, "i", "gone", strings.NewReader("x")); !chub.IsNotFound(err) {
		t.Errorf("PutJobCode of an unknown job: %v; want not found", err)
	}

	rc, err := c.JobLogs(ctx, "i", "j1", "stderr", 5, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if got, want := string(b), "log of j1 stream=stderr&offset=5&follow=1"; got != want {
		t.Errorf("JobLogs read %q; want %q", got, want)
	}
	rc, err = c.JobOutputs(ctx, "i", "j1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rc)
	rc.Close()
	if string(b) != "tar of j1" {
		t.Errorf("JobOutputs read %q", b)
	}
	if _, err := c.JobLogs(ctx, "i", "gone", "stdout", 0, false); !chub.IsNotFound(err) {
		t.Errorf("JobLogs of an unknown job: %v; want not found", err)
	}

	// Arguments are checked before anything is sent.
	n := len(f.calls)
	for _, err := range []error{
		func() error { _, err := c.JobStatus(ctx, "i", "../x"); return err }(),
		func() error { _, err := c.PutJob(ctx, "i", jobproto.Spec{ID: "", Command: "x"}); return err }(),
		func() error { _, err := c.JobLogs(ctx, "i", "j1", "../../etc/passwd", 0, false); return err }(),
		func() error { _, err := c.JobLogs(ctx, "i", "j1", "stdout", -1, false); return err }(),
		c.DeleteJob(ctx, "i", "a/b"),
	} {
		if err == nil {
			t.Error("a bad argument was accepted")
		}
	}
	if len(f.calls) != n {
		t.Errorf("bad arguments reached the agent: %v", f.calls[n:])
	}
}

func TestHostileJobAnswers(t *testing.T) {
	long := strings.Repeat("e", MaxJobError+1)
	tests := []struct{ name, answer string }{
		{"another job's status", `{"id":"j2","state":"created"}`},
		{"no id", `{"state":"created"}`},
		{"unknown state", `{"id":"j1","state":"zombie"}`},
		{"running without pid", `{"id":"j1","state":"running"}`},
		{"held with negative pid", `{"id":"j1","state":"held","pid":-1}`},
		{"negative size", `{"id":"j1","state":"exited","stdoutBytes":-5}`},
		{"negative log size", `{"id":"j1","state":"exited","logBytes":-1}`},
		{"huge error", `{"id":"j1","state":"exited","error":"` + long + `"}`},
		{"exit code out of range", `{"id":"j1","state":"exited","exitCode":300}`},
		{"not JSON", `<html>`},
		{"a list", `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.answer) })
			if st, err := c.JobStatus(context.Background(), "i", "j1"); err == nil {
				t.Fatalf("JobStatus accepted %+v", st)
			}
		})
	}
	lists := []struct{ name, answer string }{
		{"too many jobs", `{"jobs":[` + strings.Repeat(`{"id":"a","state":"created"},`, MaxJobs) + `{"id":"a","state":"created"}]}`},
		{"twice the same job", `{"jobs":[{"id":"a","state":"created"},{"id":"a","state":"created"}]}`},
		{"a bad id", `{"jobs":[{"id":"../a","state":"created"}]}`},
		{"a bad state", `{"jobs":[{"id":"a","state":"held"}]}`},
	}
	for _, tt := range lists {
		t.Run(tt.name, func(t *testing.T) {
			c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tt.answer) })
			if l, err := c.ListJobs(context.Background(), "i"); err == nil {
				t.Fatalf("ListJobs accepted %d jobs", len(l))
			}
		})
	}
	const mib = 1 << 20
	t.Run("huge status", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { endless(w, `{"id":"j1","error":"`) })
		bounded(t, "a 1 GiB status", 5*time.Second, 32*mib, func() error {
			_, err := c.JobStatus(context.Background(), "i", "j1")
			return err
		})
	})
	t.Run("logs header never comes", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		bounded(t, "a log stream never answered", 4*time.Second, 8*mib, func() error {
			_, err := c.JobLogs(context.Background(), "i", "j1", "stdout", 0, true)
			return err
		})
	})
	t.Run("endless log ends with its context", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) {
			for r.Context().Err() == nil {
				w.Write([]byte("more\n"))
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		rc, err := c.JobLogs(ctx, "i", "j1", "std_log", 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		// Longer than the call time-out: a stream has none.
		time.AfterFunc(3*time.Second, cancel)
		bounded(t, "reading an endless log", 6*time.Second, 8*mib, func() error {
			_, err := io.Copy(io.Discard, rc)
			if err == nil {
				return errors.New("the stream ended by itself")
			}
			if ctx.Err() == nil {
				t.Errorf("the stream ended before its context: %v", err)
			}
			return err
		})
	})
	t.Run("error status on outputs", func(t *testing.T) {
		c := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { endless(w, "x") })
		// A 200 with junk is the caller's to check; an error status is an error.
		c2 := hostileAgent(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, strings.Repeat("x", 1<<20), 500) })
		if _, err := c2.JobOutputs(context.Background(), "i", "j1"); err == nil || len(err.Error()) > 8192 {
			t.Errorf("JobOutputs on a 500: %.200v", err)
		}
		rc, err := c.JobOutputs(context.Background(), "i", "j1")
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	})
}

// FuzzJobStatus feeds JobStatus an agent's raw answer: it returns within
// its time-out, and a status it accepts is of the job asked for, in one of
// the four states, with a pid when held or running, sizes >= 0 and a
// bounded error.
func FuzzJobStatus(f *testing.F) {
	f.Add(`{"id":"j1","state":"running","pid":12,"stdoutBytes":3}`, false)
	f.Add(`{"id":"j1","state":"exited","exitCode":137,"canceled":true,"error":"ended"}`, false)
	f.Add(`{"id":"j1","state":"held","pid":0}`, false)
	f.Add(`{"id":"j2","state":"created"}`, false)
	f.Add(`{"id":"j1","state":"exited","logBytes":-1}`, false)
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n{", true)
	f.Add("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", true)
	f.Add("garbage", true)
	f.Fuzz(func(t *testing.T, answer string, raw bool) {
		if s, err := DecodeStatus([]byte(answer), "j1"); err == nil {
			checkFuzzed(t, s)
		}
		rt := pipeRuntime{answers: make(chan string, 1)}
		if raw {
			rt.answers <- answer
		} else {
			rt.answers <- okJSON + answer
		}
		c := &Client{Runtime: rt, CallTimeout: 2 * time.Second, HandshakeTimeout: 2 * time.Second}
		start := time.Now()
		s, err := c.JobStatus(context.Background(), "i1", "j1")
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("JobStatus took %v", d)
		}
		if err == nil {
			checkFuzzed(t, s)
		}
	})
}

func checkFuzzed(t *testing.T, s jobproto.Status) {
	t.Helper()
	if s.ID != "j1" {
		t.Fatalf("accepted the status of %q", s.ID)
	}
	switch s.State {
	case "created", "exited":
	case "held", "running":
		if s.PID <= 0 {
			t.Fatalf("accepted %s with pid %d", s.State, s.PID)
		}
	default:
		t.Fatalf("accepted the state %q", s.State)
	}
	if s.StdoutBytes < 0 || s.StderrBytes < 0 || s.LogBytes < 0 || len(s.Error) > MaxJobError {
		t.Fatalf("accepted %+v", s)
	}
}
