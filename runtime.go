package chub

import (
	"context"
	"net"
	"time"
)

// InstanceSpec is what a runtime needs to run one instance. It is derived
// from the Compute by a pure function, so every call describes the same
// instance the same way.
type InstanceSpec struct {
	ID       string // the compute's id; runtime object names derive from it
	Hostname string // the compute's name
	Image    string // image name; "" means the runtime's default
	// CPUMillis is the CPU limit in thousandths of a core.
	CPUMillis   int64
	MemoryBytes int64
	GPUs        int
	PidsLimit   int64
	// OutboundNetwork gives the instance outbound network (user-mode, no
	// change to the host's interfaces); false leaves it loopback only.
	OutboundNetwork bool
}

// Phase is what a runtime observes of an instance.
type Phase string

// The phases a runtime reports.
const (
	PhaseAbsent  Phase = "Absent"  // nothing exists: no disk, no container
	PhaseStopped Phase = "Stopped" // the disk exists, nothing runs
	PhaseRunning Phase = "Running" // the instance runs and its agent answers
	PhaseFailed  Phase = "Failed"  // it exists but is broken; Message says why
)

// InstanceStatus is a runtime's observation of one instance.
type InstanceStatus struct {
	Phase     Phase
	Message   string
	PrivateIP string
	StartedAt time.Time
}

// Runtime runs instances. Every method is idempotent: Create of an instance
// whose disk exists, Start of a running instance, Stop of a stopped one and
// Destroy of an absent one all succeed without doing anything.
type Runtime interface {
	// Name is the runtime's name (local, kubernetes).
	Name() string
	// Create prepares the instance's disk without starting it.
	Create(ctx context.Context, spec InstanceSpec) error
	// Start runs the instance (creating its disk if needed) and returns once
	// its agent answers.
	Start(ctx context.Context, spec InstanceSpec) error
	// Stop ends every process of the instance, giving them grace to exit,
	// and releases its compute; the disk is kept.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Destroy stops the instance and removes everything it had, disk included.
	Destroy(ctx context.Context, id string) error
	// Inspect observes one instance.
	Inspect(ctx context.Context, id string) (InstanceStatus, error)
	// List returns the ids of every instance the runtime holds, so that
	// orphans can be found.
	List(ctx context.Context) ([]string, error)
	// DialAgent connects to the agent inside a running instance.
	DialAgent(ctx context.Context, id string) (net.Conn, error)
}

// JobPlacer is what a runtime offers to contain the jobs an instance's
// agent runs: a cgroup of its own beneath the instance's, made and
// emptied from outside the instance, so that the instance's limits hold
// for everything together and a job's whole process tree can be ended
// whatever it does. Runtimes that cannot (a pod's cgroups) do not
// implement it; the agent's process-tree tracking then ends jobs alone.
type JobPlacer interface {
	// PlaceJob makes job's cgroup beneath instance id's and moves the
	// process pid (as the instance's own PID namespace numbers it) into
	// it. The process must belong to the instance; placing again is a
	// no-op.
	PlaceJob(ctx context.Context, id, job string, pid int) error
	// KillJob kills every process in job's cgroup and removes it; a job
	// without a cgroup is no error.
	KillJob(ctx context.Context, id, job string) error
	// JobMemory is the memory the job's processes use now, in bytes.
	JobMemory(ctx context.Context, id, job string) (int64, error)
}
