package agentclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/jobproto"
)

// The bounds on what an agent answers about jobs.
const (
	// MaxJobs is the most jobs ListJobs accepts from one agent.
	MaxJobs = jobproto.MaxJobs
	// MaxJobError is the longest Status.Error accepted.
	MaxJobError = jobproto.MaxError
	// StreamHeaderTimeout bounds the wait for the header of a stream's
	// answer (logs, outputs, code upload); the body itself has no total
	// time-out and ends with the caller's context.
	StreamHeaderTimeout = 30 * time.Second
)

// jobPath is the agent's path of job (already checked).
func jobPath(job, suffix string) string { return "/v1/jobs/" + job + suffix }

func checkJobID(job string) error {
	if !jobproto.IDPattern.MatchString(job) {
		return chub.Invalid("InvalidJobID", "job", "job id %.70q does not match %s", job, jobproto.IDPattern)
	}
	return nil
}

// CheckStatus reports whether s is a status an agent may give for job
// (job "" accepts any well-formed id).
func CheckStatus(s jobproto.Status, job string) error {
	if job != "" && s.ID != job {
		return fmt.Errorf("agent: the status is of job %.70q; asked for %q", s.ID, job)
	}
	if !jobproto.IDPattern.MatchString(s.ID) {
		return fmt.Errorf("agent: job id %.70q is not an id", s.ID)
	}
	switch s.State {
	case jobproto.StateCreated, jobproto.StateExited:
		if s.PID < 0 {
			return fmt.Errorf("agent: job %s: pid %d", s.ID, s.PID)
		}
	case jobproto.StateHeld, jobproto.StateRunning:
		if s.PID <= 0 {
			return fmt.Errorf("agent: job %s is %s without a pid (%d)", s.ID, s.State, s.PID)
		}
	default:
		return fmt.Errorf("agent: job %s: state %.40q is none of created, held, running, exited", s.ID, s.State)
	}
	if s.StdoutBytes < 0 || s.StderrBytes < 0 || s.LogBytes < 0 {
		return fmt.Errorf("agent: job %s: negative log sizes (%d, %d, %d)", s.ID, s.StdoutBytes, s.StderrBytes, s.LogBytes)
	}
	if len(s.Error) > MaxJobError {
		return fmt.Errorf("agent: job %s: an error of %d bytes; at most %d", s.ID, len(s.Error), MaxJobError)
	}
	if s.ExitCode != nil && (*s.ExitCode < 0 || *s.ExitCode > 255) {
		return fmt.Errorf("agent: job %s: exit code %d is not 0..255", s.ID, *s.ExitCode)
	}
	return nil
}

// DecodeStatus decodes and checks an agent's status answer for job.
func DecodeStatus(data []byte, job string) (jobproto.Status, error) {
	var s jobproto.Status
	if len(data) > MaxJSON {
		return s, fmt.Errorf("agent: a status of %d bytes; at most %d", len(data), MaxJSON)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return jobproto.Status{}, fmt.Errorf("agent: the job status: %w", err)
	}
	if err := CheckStatus(s, job); err != nil {
		return jobproto.Status{}, err
	}
	return s, nil
}

// jobCall makes one JSON call about job and checks the status answered.
func (c *Client) jobCall(ctx context.Context, id, method, job, suffix string, body any) (jobproto.Status, error) {
	if err := checkJobID(job); err != nil {
		return jobproto.Status{}, err
	}
	var raw json.RawMessage
	if err := c.Do(ctx, id, method, jobPath(job, suffix), body, &raw); err != nil {
		return jobproto.Status{}, jobError(err, job)
	}
	return DecodeStatus(raw, job)
}

// errAgentNotFound marks an agent's 404 answer (see Do).
var errAgentNotFound = errors.New("not found")

// jobError makes an agent's 404 a chub not-found error.
func jobError(err error, job string) error {
	if errors.Is(err, errAgentNotFound) {
		return chub.NotFound("job", "the instance's agent does not know job %s", job)
	}
	return err
}

// PutJob makes the job's directories in the instance (idempotent: the same
// spec again answers the job's status; another spec for the same id is
// refused).
func (c *Client) PutJob(ctx context.Context, id string, spec jobproto.Spec) (jobproto.Status, error) {
	return c.jobCall(ctx, id, http.MethodPut, spec.ID, "", spec)
}

// StartJob starts the job's supervisor, held before the command.
func (c *Client) StartJob(ctx context.Context, id, job string) (jobproto.Status, error) {
	return c.jobCall(ctx, id, http.MethodPost, job, "/start", nil)
}

// GoJob lets a held job run its command.
func (c *Client) GoJob(ctx context.Context, id, job string) (jobproto.Status, error) {
	return c.jobCall(ctx, id, http.MethodPost, job, "/go", nil)
}

// CancelJob asks the agent to end the job's process tree; it answers at
// once (the job is exited when its processes are gone).
func (c *Client) CancelJob(ctx context.Context, id, job string) (jobproto.Status, error) {
	return c.jobCall(ctx, id, http.MethodPost, job, "/cancel", nil)
}

// JobStatus asks for one job; an unknown job is a chub not-found error.
func (c *Client) JobStatus(ctx context.Context, id, job string) (jobproto.Status, error) {
	return c.jobCall(ctx, id, http.MethodGet, job, "", nil)
}

// ListJobs asks for every job the agent knows (at most MaxJobs). An agent
// that does not know the call at all is a chub not-found error.
func (c *Client) ListJobs(ctx context.Context, id string) ([]jobproto.Status, error) {
	var raw struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if err := c.Do(ctx, id, http.MethodGet, "/v1/jobs", nil, &raw); err != nil {
		if errors.Is(err, errAgentNotFound) {
			// An agent older than jobs (the instance started before the server was upgraded).
			return nil, chub.Errorf(chub.KindNotFound, "AgentWithoutJobs", "", "the instance's agent does not run jobs (it is older than this server): %v", err)
		}
		return nil, err
	}
	if len(raw.Jobs) > MaxJobs {
		return nil, fmt.Errorf("agent: %d jobs; at most %d", len(raw.Jobs), MaxJobs)
	}
	out := make([]jobproto.Status, 0, len(raw.Jobs))
	seen := make(map[string]bool, len(raw.Jobs))
	for _, r := range raw.Jobs {
		s, err := DecodeStatus(r, "")
		if err != nil {
			return nil, err
		}
		if seen[s.ID] {
			return nil, fmt.Errorf("agent: job %s listed twice", s.ID)
		}
		seen[s.ID] = true
		out = append(out, s)
	}
	return out, nil
}

// DeleteJob ends the job if it runs, and removes it and its directory
// from the instance. A job the agent does not know is deleted already.
func (c *Client) DeleteJob(ctx context.Context, id, job string) error {
	if err := checkJobID(job); err != nil {
		return err
	}
	err := c.Do(ctx, id, http.MethodDelete, jobPath(job, ""), nil, nil)
	if errors.Is(err, errAgentNotFound) {
		return nil
	}
	return err
}

// stream makes a call whose answer (or request body) is a stream: the
// header wait is bounded, the body is not, but ctx ends it.
func (c *Client) stream(ctx context.Context, id, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	header := StreamHeaderTimeout
	if call, _ := c.timeouts(); call < header {
		header = call
	}
	resp, err := c.httpClient(id, header, 0).Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &statusError{code: resp.StatusCode, err: fmt.Errorf("agent %s %s: %s: %s", method, path, resp.Status, msg)}
	}
	return resp, nil
}

// PutJobCode uploads the code snapshot (a tar stream, gzip'd or not) into
// the job's working directory; only while the job is created.
func (c *Client) PutJobCode(ctx context.Context, id, job string, tarGz io.Reader) error {
	if err := checkJobID(job); err != nil {
		return err
	}
	resp, err := c.stream(ctx, id, http.MethodPut, jobPath(job, "/code"), tarGz, "application/x-tar")
	if err != nil {
		return jobError(err, job)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxJSON))
	return nil
}

// JobLogs streams one log of the job from offset; with follow the stream
// goes on until the job has exited and everything was sent. Close it (or
// end ctx) to stop.
func (c *Client) JobLogs(ctx context.Context, id, job, stream string, offset int64, follow bool) (io.ReadCloser, error) {
	if err := checkJobID(job); err != nil {
		return nil, err
	}
	ok := false
	for _, s := range jobproto.Streams {
		ok = ok || s == stream
	}
	if !ok {
		return nil, chub.Invalid("InvalidLogStream", "stream", "log stream %.40q is none of std_log, stdout, stderr", stream)
	}
	if offset < 0 {
		return nil, chub.Invalid("InvalidLogOffset", "offset", "log offset %d is negative", offset)
	}
	q := "?stream=" + stream + "&offset=" + strconv.FormatInt(offset, 10)
	if follow {
		q += "&follow=1"
	}
	resp, err := c.stream(ctx, id, http.MethodGet, jobPath(job, "/logs"+q), nil, "")
	if err != nil {
		return nil, jobError(err, job)
	}
	return resp.Body, nil
}

// JobOutputs streams a tar of the job's outputs folder: entries named
// outputs/..., regular files and directories only. The reader is the
// agent's: whoever keeps it must bound and check it.
func (c *Client) JobOutputs(ctx context.Context, id, job string) (io.ReadCloser, error) {
	if err := checkJobID(job); err != nil {
		return nil, err
	}
	resp, err := c.stream(ctx, id, http.MethodGet, jobPath(job, "/outputs"), nil, "")
	if err != nil {
		return nil, jobError(err, job)
	}
	return resp.Body, nil
}

// statusError is an agent's answer with an error status.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// Is makes a 404 answer errAgentNotFound.
func (e *statusError) Is(target error) bool {
	return target == errAgentNotFound && e.code == http.StatusNotFound
}
