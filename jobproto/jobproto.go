// Package jobproto is the wire format between the server and the agent for
// jobs: what the server asks an instance's agent to run, and what the agent
// reports of it. The agent serves it on its socket:
//
//	PUT    /v1/jobs/{id}          body Spec: make the job's directories (idempotent) -> Status
//	PUT    /v1/jobs/{id}/code     body a tar stream (gzip or not): the code snapshot, extracted into WorkDir as the job's user (state created only)
//	POST   /v1/jobs/{id}/start    start the job's supervisor, held before the command -> Status (state held, PID)
//	POST   /v1/jobs/{id}/go       let a held job run its command -> Status (state running)
//	POST   /v1/jobs/{id}/cancel   end the job's whole process tree (SIGTERM, grace, SIGKILL) -> Status
//	GET    /v1/jobs               -> List
//	GET    /v1/jobs/{id}          -> Status (404 when unknown)
//	GET    /v1/jobs/{id}/logs?stream=std_log|stdout|stderr&offset=N&follow=1
//	                              the log's bytes from offset; with follow, more as they come until the job has exited and all is sent
//	GET    /v1/jobs/{id}/outputs  a tar stream of OutputsDir (regular files and directories only)
//	DELETE /v1/jobs/{id}          forget the job and remove its directory
//
// Errors are plain text with a 4xx/5xx status. The server trusts nothing an
// agent answers: the client (package agentclient) bounds and checks it.
package jobproto

import (
	"regexp"
	"time"
)

// Root is the directory of every job in the instance: Root/<id>/ holds
// wd/ (the working directory: the code snapshot and outputs/, owned by the
// job's user), logs/ (stdout.txt, stderr.txt, std_log.txt: root-owned,
// readable by the user) and status.json (root-owned).
const Root = "/mnt/chub/jobs"

// The logs a job keeps. std_log is stdout and stderr together, in the order
// they were written (Azure's std_log.txt).
const (
	StreamLog    = "std_log"
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Streams are the log names.
var Streams = []string{StreamLog, StreamStdout, StreamStderr}

// MaxJobs is the most jobs an agent keeps (and a list holds).
const MaxJobs = 4096

// MaxError is the longest Status.Error.
const MaxError = 4096

// IDPattern is what a job id must match on the wire.
var IDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$`)

// NamePattern is what an output's name must match.
var NamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,254}$`)

// Spec is a job as the agent runs it. The server has expanded the
// command's ${{inputs.x}} and ${{outputs.x}} already.
type Spec struct {
	ID string `json:"id"`
	// User runs the command; "" is the agent's default user.
	User string `json:"user,omitempty"`
	// Command runs as "bash -lc Command" in WorkDir.
	Command string `json:"command"`
	// Env adds KEY=VALUE entries to the command's environment.
	Env []string `json:"env,omitempty"`
	// Outputs are named outputs: folders made as OutputsDir/<name>.
	Outputs []string `json:"outputs,omitempty"`
	// Timeout, when set, ends the job (as a cancel would) once it has run
	// that long; Status.TimedOut then says so.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// The states of a job in the agent.
const (
	StateCreated = "created" // directories made; code may be put
	StateHeld    = "held"    // the supervisor runs, the command does not yet
	StateRunning = "running"
	StateExited  = "exited" // the command ended (or never started: Error says why)
)

// Status is what the agent reports of one job.
type Status struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// PID is the supervisor's pid in the instance's PID namespace (held,
	// running): the process the runtime places in the job's cgroup.
	PID int `json:"pid,omitempty"`
	// ExitCode is the command's, shell-style (128+signal); set once exited.
	ExitCode *int `json:"exitCode,omitempty"`
	// Error says why the command failed to start or was ended.
	Error     string    `json:"error,omitempty"`
	Canceled  bool      `json:"canceled,omitempty"`
	TimedOut  bool      `json:"timedOut,omitempty"`
	StartedAt time.Time `json:"startedAt,omitempty"`
	EndedAt   time.Time `json:"endedAt,omitempty"`
	// The sizes of the logs so far.
	StdoutBytes int64 `json:"stdoutBytes"`
	StderrBytes int64 `json:"stderrBytes"`
	LogBytes    int64 `json:"logBytes"`
}

// List is the agent's answer to GET /v1/jobs.
type List struct {
	Jobs []Status `json:"jobs"`
}

// WorkDir is the working directory of job id in the instance.
func WorkDir(id string) string { return Root + "/" + id + "/wd" }

// OutputsDir is where the job writes what is kept after it (./outputs).
func OutputsDir(id string) string { return WorkDir(id) + "/outputs" }
