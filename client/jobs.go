package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/computehub/chub"
)

// SystemData is ARM's record of who made and changed a resource.
type SystemData struct {
	CreatedBy          string     `json:"createdBy,omitempty"`
	CreatedByType      string     `json:"createdByType,omitempty"`
	CreatedAt          *time.Time `json:"createdAt,omitempty"`
	LastModifiedBy     string     `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string     `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     *time.Time `json:"lastModifiedAt,omitempty"`
}

// Job is a job resource as the API returns it.
type Job struct {
	ID         string        `json:"id,omitempty"`
	Name       string        `json:"name,omitempty"`
	Type       string        `json:"type,omitempty"`
	SystemData *SystemData   `json:"systemData,omitempty"`
	Properties JobProperties `json:"properties"`
}

// JobInput is one input of a job (only literal values run).
type JobInput struct {
	JobInputType string `json:"jobInputType"`
	Value        string `json:"value"`
	Description  string `json:"description,omitempty"`
}

// JobOutput is one output folder of a job, kept after it ends.
type JobOutput struct {
	JobOutputType string  `json:"jobOutputType"`
	Mode          string  `json:"mode,omitempty"`
	URI           *string `json:"uri,omitempty"`
	Description   string  `json:"description,omitempty"`
}

// JobLimits are a command job's limits; Timeout is an ISO-8601 duration.
type JobLimits struct {
	JobLimitsType string `json:"jobLimitsType"`
	Timeout       string `json:"timeout,omitempty"`
}

// JobService is one of a job's service endpoints (Studio: its page).
type JobService struct {
	JobServiceType string  `json:"jobServiceType,omitempty"`
	Endpoint       string  `json:"endpoint,omitempty"`
	Status         *string `json:"status,omitempty"`
}

// JobProperties are a command job's properties: what was asked for, then
// the read-only status fields the server fills in.
type JobProperties struct {
	JobType              string               `json:"jobType"`
	Command              string               `json:"command"`
	ComputeID            string               `json:"computeId,omitempty"`
	CodeID               string               `json:"codeId,omitempty"`
	EnvironmentID        string               `json:"environmentId,omitempty"`
	EnvironmentVariables map[string]string    `json:"environmentVariables,omitempty"`
	Inputs               map[string]JobInput  `json:"inputs,omitempty"`
	Outputs              map[string]JobOutput `json:"outputs,omitempty"`
	Limits               *JobLimits           `json:"limits,omitempty"`
	DisplayName          string               `json:"displayName,omitempty"`
	ExperimentName       string               `json:"experimentName,omitempty"`
	Description          string               `json:"description,omitempty"`
	Tags                 map[string]string    `json:"tags,omitempty"`
	Properties           map[string]string    `json:"properties,omitempty"`

	// Read-only: never sent by CreateOrUpdateJob.
	Status        chub.JobStatus         `json:"status,omitempty"`
	IsArchived    bool                   `json:"isArchived,omitempty"`
	Services      map[string]*JobService `json:"services,omitempty"`
	StatusMessage string                 `json:"statusMessage,omitempty"`
	ExitCode      *int                   `json:"exitCode,omitempty"`
	Error         *chub.ErrorDetail      `json:"error,omitempty"`
	StartTime     *time.Time             `json:"startTime,omitempty"`
	EndTime       *time.Time             `json:"endTime,omitempty"`
	QueuePosition *int                   `json:"queuePosition,omitempty"`
}

// writable is p without its read-only fields.
func (p JobProperties) writable() JobProperties {
	p.Status, p.IsArchived, p.Services, p.StatusMessage = "", false, nil, ""
	p.ExitCode, p.Error, p.StartTime, p.EndTime, p.QueuePosition = nil, nil, nil, nil, nil
	return p
}

// StudioURL is the job's page in Studio ("" when the server gave none).
func (j *Job) StudioURL() string {
	if s := j.Properties.Services["Studio"]; s != nil {
		return s.Endpoint
	}
	return ""
}

// WorkspaceID is the ARM id of a workspace ("" is the configured one).
func (c *Client) WorkspaceID(ws string) string { return c.workspacePath(ws) }

func (c *Client) jobPath(ws, name string) string {
	return c.workspacePath(ws) + "/jobs/" + url.PathEscape(name)
}

// CreateOrUpdateJob submits a job (201) or updates an existing one's
// mutable fields (200). created says which.
func (c *Client) CreateOrUpdateJob(ctx context.Context, ws, name string, p JobProperties) (job *Job, created bool, err error) {
	var out Job
	resp, err := c.do(ctx, http.MethodPut, withVersion(c.jobPath(ws, name)), Job{Properties: p.writable()}, &out)
	if err != nil {
		return nil, false, err
	}
	return &out, resp.StatusCode == http.StatusCreated, nil
}

// GetJob fetches one job.
func (c *Client) GetJob(ctx context.Context, ws, name string) (*Job, error) {
	var out Job
	if _, err := c.do(ctx, http.MethodGet, withVersion(c.jobPath(ws, name)), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListJobsOptions filter a job list; zero values select the workspace's
// active (not archived) jobs.
type ListJobsOptions struct {
	View    chub.JobView // ActiveOnly (default), ArchivedOnly or All
	Tag     string       // name or name=value
	Compute string       // an instance's name (a ComputeHub extension)
}

// ListJobs lists a workspace's jobs, newest first, following nextLink.
func (c *Client) ListJobs(ctx context.Context, ws string, o ListJobsOptions) ([]Job, error) {
	q := url.Values{}
	if o.View != "" {
		q.Set("listViewType", string(o.View))
	}
	if o.Tag != "" {
		q.Set("tag", o.Tag)
	}
	if o.Compute != "" {
		q.Set("compute", o.Compute)
	}
	next := c.workspacePath(ws) + "/jobs"
	if len(q) > 0 {
		next += "?" + q.Encode()
	}
	next = withVersion(next)
	var all []Job
	for pages := 0; next != ""; pages++ {
		if pages > 100000 {
			return nil, fmt.Errorf("list jobs: the server's nextLink did not end after %d pages", pages)
		}
		var page struct {
			Value    []Job  `json:"value"`
			NextLink string `json:"nextLink"`
		}
		if _, err := c.do(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		next = page.NextLink
	}
	return all, nil
}

// CancelJob asks the server to cancel a job (202 even when it has ended).
func (c *Client) CancelJob(ctx context.Context, ws, name string) error {
	_, err := c.do(ctx, http.MethodPost, withVersion(c.jobPath(ws, name)+"/cancel"), nil, nil)
	return err
}

// ArchiveJob archives a job (Azure's DELETE), canceling it first when it
// is active; the job then shows only in archived lists.
func (c *Client) ArchiveJob(ctx context.Context, ws, name string) error {
	_, err := c.do(ctx, http.MethodDelete, withVersion(c.jobPath(ws, name)), nil, nil)
	return err
}

// JobProgress receives each new status of a job while it is waited for.
type JobProgress func(j *Job, elapsed time.Duration)

// WaitJob polls a job until done(job) is true (nil done: until its status
// is terminal), reporting each new status.
func (c *Client) WaitJob(ctx context.Context, ws, name string, done func(*Job) bool, progress JobProgress) (*Job, error) {
	if done == nil {
		done = func(j *Job) bool { return j.Properties.Status.Terminal() }
	}
	start := time.Now()
	var last chub.JobStatus
	interval := 100 * time.Millisecond
	for {
		j, err := c.GetJob(ctx, ws, name)
		if err != nil {
			return nil, err
		}
		if j.Properties.Status != last && progress != nil {
			progress(j, time.Since(start))
		}
		last = j.Properties.Status
		if done(j) {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(interval):
		}
		if interval < time.Second {
			interval += 100 * time.Millisecond
		}
	}
}

// streaming is an HTTP client without the overall timeout, for bodies
// that last as long as a job (logs) or an upload.
func (c *Client) streaming() *http.Client {
	return &http.Client{Transport: c.http.Transport}
}

// open sends a GET whose answer body the caller reads.
func (c *Client) open(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.Server+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("User-Agent", "chub-cli")
	resp, err := c.streaming().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", c.cfg.Server, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, decodeErrorResponse(resp)
	}
	return resp, nil
}

// Log streams of a job.
const (
	StdLog = "std_log" // stdout and stderr merged, as written
	Stdout = "stdout"
	Stderr = "stderr"
)

// StreamJobLogs opens one of a job's logs from byte offset. With follow
// the body lasts until the job has ended and everything was sent.
func (c *Client) StreamJobLogs(ctx context.Context, ws, name, stream string, offset int64, follow bool) (io.ReadCloser, error) {
	if stream == "" {
		stream = StdLog
	}
	q := url.Values{"stream": {stream}, "offset": {strconv.FormatInt(offset, 10)}, "follow": {strconv.FormatBool(follow)}}
	resp, err := c.open(ctx, withVersion(c.jobPath(ws, name)+"/logs?"+q.Encode()))
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DownloadJobOutputs opens a tar.gz of an ended job's outputs folder
// (outputs/...), narrowed to outputs/<outputName>/ when outputName is set.
func (c *Client) DownloadJobOutputs(ctx context.Context, ws, name, outputName string) (io.ReadCloser, error) {
	p := c.jobPath(ws, name) + "/outputs"
	if outputName != "" {
		p += "?name=" + url.QueryEscape(outputName)
	}
	resp, err := c.open(ctx, withVersion(p))
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// StopCompute stops an instance; with cancelJobs its active jobs are
// canceled first, otherwise the stop waits for running jobs to end.
func (c *Client) StopCompute(ctx context.Context, ws, name string, cancelJobs bool) (*Operation, error) {
	p := c.computePath(ws, name) + "/stop"
	if cancelJobs {
		p += "?cancelJobs=true"
	}
	resp, err := c.do(ctx, http.MethodPost, withVersion(p), nil, nil)
	if err != nil {
		return nil, err
	}
	return asyncOp(resp), nil
}
