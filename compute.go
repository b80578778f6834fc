package chub

import (
	"time"
)

// State is an instance's state, with Azure's values.
type State string

// The states of a compute instance (Azure's ComputeInstanceState).
const (
	StateCreating        State = "Creating"
	StateCreateFailed    State = "CreateFailed"
	StateDeleting        State = "Deleting"
	StateRunning         State = "Running"
	StateRestarting      State = "Restarting"
	StateResizing        State = "Resizing"
	StateJobRunning      State = "JobRunning"
	StateSettingUp       State = "SettingUp"
	StateSetupFailed     State = "SetupFailed"
	StateStarting        State = "Starting"
	StateStopped         State = "Stopped"
	StateStopping        State = "Stopping"
	StateUserSettingUp   State = "UserSettingUp"
	StateUserSetupFailed State = "UserSetupFailed"
	StateUnknown         State = "Unknown"
	StateUnusable        State = "Unusable"
)

// Desired is what the user asked an instance to be; the reconciler drives
// the runtime until the instance is that.
type Desired string

// The desired states.
const (
	DesiredRunning Desired = "Running"
	DesiredStopped Desired = "Stopped"
	DesiredDeleted Desired = "Deleted"
)

// OperationName names a lifecycle operation (Azure's lastOperation.operationName).
type OperationName string

// The lifecycle operations.
const (
	OpCreate  OperationName = "Create"
	OpStart   OperationName = "Start"
	OpStop    OperationName = "Stop"
	OpRestart OperationName = "Restart"
	OpResize  OperationName = "Resize"
	OpReimage OperationName = "Reimage"
	OpDelete  OperationName = "Delete"
)

// FailedStatus is the lastOperation.operationStatus of a failed operation
// (CreateFailed, StartFailed, ...).
func (n OperationName) FailedStatus() string { return string(n) + "Failed" }

// Trigger says who started an operation.
type Trigger string

// The operation triggers.
const (
	TriggerUser         Trigger = "User"
	TriggerSchedule     Trigger = "Schedule"
	TriggerIdleShutdown Trigger = "IdleShutdown"
)

// LastOperation is the instance's most recent operation, in Azure's shape.
type LastOperation struct {
	OperationName    OperationName `json:"operationName"`
	OperationTime    time.Time     `json:"operationTime"`
	OperationStatus  string        `json:"operationStatus"`
	OperationTrigger Trigger       `json:"operationTrigger"`
}

// Principal identifies who did something.
type Principal struct {
	UserID   string `json:"userId"`   // object id
	UserName string `json:"userName"` // login name
	OrgID    string `json:"userOrgId"`
}

// Compute is a compute instance: what the user asked for (Settings,
// Desired) and what the reconciler last saw (State, Errors).
type Compute struct {
	ID          string // internal UUID; runtime names derive from it
	WorkspaceID string
	Scope       WorkspaceScope
	Name        string
	Location    string
	Description string
	Tags        map[string]string
	Settings    InstanceSettings

	CreatedBy  Principal
	CreatedAt  time.Time
	ModifiedBy Principal
	ModifiedAt time.Time

	Desired Desired
	// RestartPending is set by a restart request and cleared by the
	// reconciler once it has stopped the instance on the way to running it again.
	RestartPending bool
	// ActiveOperation is the id of the operation in flight, empty when none.
	ActiveOperation string

	State         State
	LastOperation *LastOperation
	Errors        []ErrorDetail
	// RuntimeState is an opaque blob the runtime driver may keep per instance.
	RuntimeState []byte
	// Observed is what the server last learned from inside the instance.
	Observed Observed
	// Quota, when set on a compute being created, is the hold the store
	// takes against the region's quota in the same transaction.
	Quota *QuotaHold
	// SSHPort is the port on the server's host that carries SSH to the
	// instance, 0 when SSH is disabled. It is kept for the instance's lifetime.
	SSHPort int

	// Version is incremented by every write; a write with a stale version fails.
	Version int64
}

// ProvisioningState is the ARM provisioningState derived from the instance.
func (c *Compute) ProvisioningState() string {
	switch {
	case c.Desired == DesiredDeleted:
		return "Deleting"
	case c.State == StateCreating:
		return "Creating"
	case c.State == StateCreateFailed:
		return "Failed"
	default:
		return "Succeeded"
	}
}

// Owner is the instance's user: the assigned user when it was created on
// behalf of someone, its creator otherwise.
func (c *Compute) Owner() string {
	if p := c.Settings.PersonalComputeInstanceSettings; p != nil && p.AssignedUser != nil && p.AssignedUser.ObjectID != "" {
		return p.AssignedUser.ObjectID
	}
	return c.CreatedBy.UserID
}

// ResourceID is the instance's ARM id.
func (c *Compute) ResourceID() string {
	return c.Scope.ResourceID() + "/computes/" + c.Name
}

// OpStatus is the status of an asynchronous operation as Azure reports it.
type OpStatus string

// The operation statuses; all but InProgress are terminal.
const (
	OpInProgress OpStatus = "InProgress"
	OpSucceeded  OpStatus = "Succeeded"
	OpFailed     OpStatus = "Failed"
	OpCanceled   OpStatus = "Canceled"
)

// Operation is one asynchronous operation on an instance, kept after the
// instance is gone so that its status URL keeps answering.
type Operation struct {
	ID          string
	ComputeID   string
	ResourceID  string
	Location    string
	Name        OperationName
	Trigger     Trigger
	Status      OpStatus
	Error       *ErrorDetail
	StartTime   time.Time
	EndTime     time.Time
	RequestedBy Principal
}

// Done reports whether the operation has reached a terminal status.
func (o *Operation) Done() bool { return o.Status != OpInProgress }

// Observed is what the server last learned from inside a running instance.
type Observed struct {
	// Applications are the catalog names of the applications whose program
	// exists in the instance's image.
	Applications []string   `json:"applications,omitempty"`
	LastActivity *time.Time `json:"lastActivity,omitempty"`
	// ActivityKind says what the last activity was (terminal, ssh, app, ...).
	ActivityKind string `json:"activityKind,omitempty"`
	PrivateIP    string `json:"privateIp,omitempty"`
}
