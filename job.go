package chub

import (
	"context"
	"regexp"
	"time"
)

// JobStatus is a job's status, with Azure's values.
type JobStatus string

// The statuses a job goes through. NotStarted: stored, not yet queued;
// Queued: waiting for a slot on its instance (or for the instance to
// run); Preparing: its code is copied and its process made; Running;
// Finalizing: ended, its logs and outputs being kept; then one of the
// terminal three. CancelRequested: a cancel is on its way.
const (
	JobNotStarted      JobStatus = "NotStarted"
	JobQueued          JobStatus = "Queued"
	JobPreparing       JobStatus = "Preparing"
	JobRunning         JobStatus = "Running"
	JobFinalizing      JobStatus = "Finalizing"
	JobCancelRequested JobStatus = "CancelRequested"
	JobCompleted       JobStatus = "Completed"
	JobFailed          JobStatus = "Failed"
	JobCanceled        JobStatus = "Canceled"
)

// Terminal reports whether the status is final.
func (s JobStatus) Terminal() bool {
	return s == JobCompleted || s == JobFailed || s == JobCanceled
}

// ActiveJobStatuses are the statuses of jobs that are not finished.
var ActiveJobStatuses = []JobStatus{JobNotStarted, JobQueued, JobPreparing, JobRunning, JobFinalizing, JobCancelRequested}

// JobNamePattern is what a job's name (its id in the URL) must match, as in Azure.
var JobNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$`)

// The job actions (Azure's).
const (
	ActionJobRead    = "Microsoft.MachineLearningServices/workspaces/jobs/read"
	ActionJobWrite   = "Microsoft.MachineLearningServices/workspaces/jobs/write"
	ActionJobDelete  = "Microsoft.MachineLearningServices/workspaces/jobs/delete"
	ActionJobCancel  = "Microsoft.MachineLearningServices/workspaces/jobs/cancel/action"
	ActionCodeRead   = "Microsoft.MachineLearningServices/workspaces/codes/read"
	ActionCodeWrite  = "Microsoft.MachineLearningServices/workspaces/codes/write"
	ActionCodeDelete = "Microsoft.MachineLearningServices/workspaces/codes/delete"
	ActionEnvRead    = "Microsoft.MachineLearningServices/workspaces/environments/read"
	ActionEnvWrite   = "Microsoft.MachineLearningServices/workspaces/environments/write"
	ActionEnvDelete  = "Microsoft.MachineLearningServices/workspaces/environments/delete"
)

// JobInput is one input of a job; only literal values are run.
type JobInput struct {
	Type        string `json:"jobInputType"` // "literal"
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

// JobOutput is one named output: a folder the job writes, kept after it.
type JobOutput struct {
	Type        string `json:"jobOutputType"` // "uri_folder"
	Description string `json:"description,omitempty"`
}

// JobSpec is what the submitter asked for: a command job.
type JobSpec struct {
	JobType string `json:"jobType"` // "Command"
	Command string `json:"command"`
	// CodeID and EnvironmentID are ARM ids of a code and an environment
	// version of the job's workspace; "" when none was given.
	CodeID               string               `json:"codeId,omitempty"`
	EnvironmentID        string               `json:"environmentId,omitempty"`
	ComputeID            string               `json:"computeId"` // ARM id of the instance
	EnvironmentVariables map[string]string    `json:"environmentVariables,omitempty"`
	Inputs               map[string]JobInput  `json:"inputs,omitempty"`
	Outputs              map[string]JobOutput `json:"outputs,omitempty"`
	// Timeout is limits.timeout; 0 means none.
	Timeout        time.Duration     `json:"timeout,omitempty"`
	DisplayName    string            `json:"displayName,omitempty"`
	ExperimentName string            `json:"experimentName,omitempty"`
	Description    string            `json:"description,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Properties     map[string]string `json:"properties,omitempty"`
}

// Job is a command job on a compute instance.
type Job struct {
	ID          string // internal UUID; the agent and the artifact store know the job by it
	WorkspaceID string
	Scope       WorkspaceScope
	Name        string // the id in the URL
	// ComputeID is the internal id of the instance the job runs on.
	ComputeID string
	Spec      JobSpec
	// Seq orders submissions: the store assigns it, increasing.
	Seq    int64
	Status JobStatus
	// Message says why the job waits or how it ended (for people).
	Message  string
	Error    *ErrorDetail
	ExitCode *int
	Archived bool

	CreatedBy  Principal
	CreatedAt  time.Time
	ModifiedBy Principal
	ModifiedAt time.Time
	StartTime  *time.Time // when it began running
	EndTime    *time.Time // when it reached a terminal status

	// Artifacts is what the server kept of the job once it ended.
	Artifacts JobArtifacts

	// Version is incremented by every write; a write with a stale version fails.
	Version int64
}

// JobArtifacts records the sizes of what is kept of an ended job.
type JobArtifacts struct {
	Kept        bool  `json:"kept"` // logs (and outputs) are in the artifact store
	StdoutBytes int64 `json:"stdoutBytes,omitempty"`
	StderrBytes int64 `json:"stderrBytes,omitempty"`
	LogBytes    int64 `json:"logBytes,omitempty"`
	OutputBytes int64 `json:"outputBytes,omitempty"`
	// Truncated says a log or the outputs went over the server's limits.
	Truncated bool `json:"truncated,omitempty"`
}

// ResourceID is the job's ARM id.
func (j *Job) ResourceID() string { return j.Scope.ResourceID() + "/jobs/" + j.Name }

// JobView selects archived jobs or not (Azure's listViewType).
type JobView string

// The list views.
const (
	JobViewActive   JobView = "ActiveOnly"
	JobViewArchived JobView = "ArchivedOnly"
	JobViewAll      JobView = "All"
)

// JobFilter selects jobs. Zero fields select everything.
type JobFilter struct {
	Workspace *WorkspaceScope // nil: every workspace
	ComputeID string
	Statuses  []JobStatus
	View      JobView // "" is ActiveOnly
	// Tag selects jobs that have this tag (name, or name=value).
	Tag  string
	Page Page
}

// AssetKind is a kind of versioned workspace asset.
type AssetKind string

// The asset kinds.
const (
	AssetCode        AssetKind = "codes"
	AssetEnvironment AssetKind = "environments"
)

// AssetVersion is one version of a code or an environment. Properties
// holds the kind's own fields: codeUri for a code, image for an
// environment.
type AssetVersion struct {
	ID          string
	Kind        AssetKind
	WorkspaceID string
	Scope       WorkspaceScope
	Name        string
	Version     string
	Description string
	Tags        map[string]string
	Properties  map[string]string // the asset's "properties" dictionary
	// CodeURI is a code's content: a blob of the blob store.
	CodeURI string
	// Image is an environment's image ("" is the runtime's default).
	Image      string
	IsArchived bool
	CreatedBy  Principal
	CreatedAt  time.Time
	ModifiedAt time.Time
}

// ResourceID is the version's ARM id.
func (a *AssetVersion) ResourceID() string {
	return a.Scope.ResourceID() + "/" + string(a.Kind) + "/" + a.Name + "/versions/" + a.Version
}

// Blob is an uploaded file of a workspace (a code's tarball). It is
// pending until its content arrives, then ready and immutable.
type Blob struct {
	ID          string
	WorkspaceID string
	// TokenHash is the hash of the upload's one-time secret (pending only).
	TokenHash string
	Ready     bool
	Size      int64
	SHA256    string
	CreatedBy Principal
	CreatedAt time.Time
	ExpiresAt time.Time // a pending blob not uploaded by then is forgotten
}

// JobStore is the part of the Store that keeps jobs, assets and blobs.
type JobStore interface {
	// CreateJob inserts a job and assigns its Seq; a name taken in the
	// workspace is a KindConflict error.
	CreateJob(ctx context.Context, j *Job) error
	GetJob(ctx context.Context, s WorkspaceScope, name string) (*Job, error)
	GetJobByID(ctx context.Context, id string) (*Job, error)
	// UpdateJob writes j, version-checked (KindConflict when stale).
	UpdateJob(ctx context.Context, j *Job) error
	// ListJobs lists jobs by Seq (submission order).
	ListJobs(ctx context.Context, f JobFilter) ([]*Job, error)
	// CountJobs counts each instance's jobs in the given statuses, by
	// compute id.
	CountJobs(ctx context.Context, statuses []JobStatus) (map[string]int, error)

	// PutAsset creates or updates a version; created says which.
	PutAsset(ctx context.Context, a *AssetVersion) (created bool, err error)
	GetAsset(ctx context.Context, kind AssetKind, s WorkspaceScope, name, version string) (*AssetVersion, error)
	// ListAssets lists the versions of one asset, or of every asset of
	// the kind when name is "".
	ListAssets(ctx context.Context, kind AssetKind, s WorkspaceScope, name string, p Page) ([]*AssetVersion, error)
	DeleteAsset(ctx context.Context, kind AssetKind, s WorkspaceScope, name, version string) error

	CreateBlob(ctx context.Context, b *Blob) error
	GetBlob(ctx context.Context, id string) (*Blob, error)
	// MarkBlobReady records that a pending blob's content arrived.
	MarkBlobReady(ctx context.Context, id string, size int64, sha256 string) error
}
