// Package lifecycle applies the rules of compute-instance operations to the
// store: what may be created, which operation is allowed in which state, one
// operation at a time, and delete winning over any operation in flight. It
// records intent (desired state plus an operation) and wakes the reconciler;
// it never touches a runtime.
package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/computehub/chub"
)

// Service is the compute-instance lifecycle.
type Service struct {
	Store   chub.Store
	Catalog func() *chub.Catalog
	Region  string
	// Wake tells the reconciler that an instance changed.
	Wake func(id string)
	// CheckSize refuses sizes the runtime cannot hold; nil accepts all.
	CheckSize func(chub.InstanceSpec) error
	// CheckImage refuses images the runtime does not have; nil accepts all.
	CheckImage func(name string) error
	// CheckSSHKey refuses an admin public key the SSH gateway cannot use;
	// nil accepts every key the domain's validation accepts.
	CheckSSHKey func(authorizedKey string) error
	// PickSSHPort proposes a free port on the server's host for an instance
	// with SSH enabled; the store's unique index makes the choice final, and
	// a conflict asks for another. Nil means this server offers no SSH.
	PickSSHPort func(ctx context.Context) (int, error)
	// CancelJobs cancels every active job of an instance (the job
	// controller's CancelAll): Stop with cancelJobs and Delete call it,
	// reason going into each job's message. Nil means no jobs to cancel.
	CancelJobs func(ctx context.Context, computeID string, by chub.Principal, reason string) error
	Now        func() time.Time
}

// NewID returns a random UUID (version 4).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// CreateRequest is what a PUT of a compute instance asks for.
type CreateRequest struct {
	Location    string
	Description string
	Tags        map[string]string
	Settings    chub.InstanceSettings
}

// activeOpErr is the conflict the v1 SDK recognises.
func activeOpErr(c *chub.Compute) error {
	return chub.Conflict("Conflict", "name",
		"There is already an active operation submitted for compute %q; wait for it to finish (chub computetarget show -n %s) and try again", c.Name, c.Name)
}

// SpecFor derives the runtime's view of an instance from its size: a pure
// function of the compute and the catalog entry.
func SpecFor(c *chub.Compute, size chub.VMSize) chub.InstanceSpec {
	return chub.InstanceSpec{
		ID:          c.ID,
		Hostname:    strings.ToLower(c.Name),
		Image:       c.Settings.Image,
		CPUMillis:   int64(size.VCPUs) * 1000,
		MemoryBytes: int64(size.MemoryGB * (1 << 30)),
		GPUs:        size.GPUs,
		PidsLimit:   int64(4096 * size.VCPUs),
		// Stored computes older than the setting have it empty: Enabled.
		OutboundNetwork: c.Settings.OutboundNetworkAccess != "Disabled",
	}
}

// CreateOrUpdate creates the instance, or on an existing one changes only
// its description and tags.
func (s *Service) CreateOrUpdate(ctx context.Context, caller *chub.User, scope chub.WorkspaceScope, name string, req CreateRequest) (*chub.Compute, *chub.Operation, bool, error) {
	ws, err := s.Store.GetWorkspace(ctx, scope)
	if err != nil {
		return nil, nil, false, err
	}
	scope = ws.Scope
	if err := chub.ValidateTags(req.Tags); err != nil {
		return nil, nil, false, err
	}
	if err := chub.ValidateDescription(req.Description, "properties.description"); err != nil {
		return nil, nil, false, err
	}
	existing, err := s.Store.GetCompute(ctx, scope, name)
	if err == nil {
		c, err := s.update(ctx, caller, existing, req)
		return c, nil, false, err
	}
	if !chub.IsNotFound(err) {
		return nil, nil, false, err
	}
	if err := chub.ValidateComputeName(name); err != nil {
		return nil, nil, false, err
	}
	if req.Location != "" && !strings.EqualFold(strings.ReplaceAll(req.Location, " ", ""), s.Region) {
		return nil, nil, false, chub.Invalid("LocationNotAvailable", "location", "location %q is not served here; this server's region is %q", req.Location, s.Region)
	}
	if err := req.Settings.Normalize(); err != nil {
		return nil, nil, false, err
	}
	size, ok := s.Catalog().Lookup(req.Settings.VMSize)
	if !ok {
		return nil, nil, false, chub.Invalid("InvalidVmSize", "properties.properties.vmSize",
			"VM size %q is not offered in region %q; list the sizes with 'chub vmsize list'", req.Settings.VMSize, s.Region)
	}
	req.Settings.VMSize = size.Name
	if sc := req.Settings.Schedules; sc != nil {
		for i := range sc.ComputeStartStop {
			sc.ComputeStartStop[i].ID = NewID() // read-only, assigned by the service
			sc.ComputeStartStop[i].ProvisioningStatus = "Completed"
		}
	}
	if a := req.Settings.PersonalComputeInstanceSettings; a != nil && a.AssignedUser != nil {
		u, err := s.Store.UserByID(ctx, a.AssignedUser.ObjectID)
		if err != nil || !strings.EqualFold(u.TenantID, a.AssignedUser.TenantID) {
			return nil, nil, false, chub.Invalid("InvalidAssignedUser", "properties.properties.personalComputeInstanceSettings.assignedUser",
				"assigned user %s in tenant %s does not exist; create the user first (chub user create)", a.AssignedUser.ObjectID, a.AssignedUser.TenantID)
		}
		// Custom services run inside the instance: only its user sets them.
		if len(req.Settings.CustomServices) > 0 && u.ID != caller.ID {
			return nil, nil, false, chub.Errorf(chub.KindForbidden, "AuthorizationFailed", "properties.properties.customServices",
				"custom services run inside the instance, so only its user (%s) may set them; create it without customServices and let them add theirs", u.Name)
		}
	}
	now := s.now()
	c := &chub.Compute{
		ID: NewID(), WorkspaceID: ws.ID, Scope: scope, Name: name, Location: s.Region,
		Description: req.Description, Tags: req.Tags, Settings: req.Settings,
		CreatedBy: caller.Principal(), CreatedAt: now, ModifiedBy: caller.Principal(), ModifiedAt: now,
		Desired: chub.DesiredRunning, State: chub.StateCreating,
	}
	if s.CheckImage != nil && req.Settings.Image != "" {
		if err := s.CheckImage(req.Settings.Image); err != nil {
			return nil, nil, false, err
		}
	}
	if s.CheckSize != nil {
		if err := s.CheckSize(SpecFor(c, size)); err != nil {
			return nil, nil, false, err
		}
	}
	// The instance holds its cores from creation to deletion (an instance
	// is a one-node cluster on the region's quota ledger).
	c.Quota = &chub.QuotaHold{HolderID: c.ID, Subscription: c.Scope.Subscription, Location: s.Region, Family: size.Family, Cores: int64(size.VCPUs)}
	op := s.newOp(c, chub.OpCreate, caller)
	c.ActiveOperation = op.ID
	c.LastOperation = &chub.LastOperation{OperationName: chub.OpCreate, OperationTime: now, OperationStatus: string(chub.OpInProgress), OperationTrigger: chub.TriggerUser}
	if err := s.createWithSSHPort(ctx, c, op); err != nil {
		return nil, nil, false, err
	}
	s.wake(c.ID)
	return c, op, true, nil
}

// sshPortAttempts bounds the retries when concurrent creates race for a port.
const sshPortAttempts = 8

// createWithSSHPort stores a new instance, first giving it an SSH port on
// the host when SSH is enabled: the unique index on the port settles races
// between creates, and the loser proposes another port.
func (s *Service) createWithSSHPort(ctx context.Context, c *chub.Compute, op *chub.Operation) error {
	ssh := c.Settings.SSHSettings
	if ssh == nil || ssh.SSHPublicAccess != "Enabled" {
		return s.Store.CreateCompute(ctx, c, op)
	}
	if s.PickSSHPort == nil {
		return chub.Invalid("SshNotAvailable", "properties.properties.sshSettings.sshPublicAccess",
			"this server does not offer SSH access; create the instance with sshPublicAccess Disabled")
	}
	if s.CheckSSHKey != nil {
		if err := s.CheckSSHKey(ssh.AdminPublicKey); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		port, err := s.PickSSHPort(ctx)
		if err != nil {
			return err
		}
		c.SSHPort = port
		err = s.Store.CreateCompute(ctx, c, op)
		var ce *chub.Error
		if errors.As(err, &ce) && ce.Code == "SshPortTaken" && attempt < sshPortAttempts {
			continue
		}
		return err
	}
}

func (s *Service) update(ctx context.Context, caller *chub.User, c *chub.Compute, req CreateRequest) (*chub.Compute, error) {
	if c.Desired == chub.DesiredDeleted {
		return nil, chub.Conflict("Conflict", "name", "compute %q is being deleted", c.Name)
	}
	if v := req.Settings.VMSize; v != "" && !strings.EqualFold(v, c.Settings.VMSize) {
		return nil, chub.Invalid("VmSizeImmutable", "properties.properties.vmSize",
			"the VM size of compute %q is %s and cannot be changed by an update (asked for %s); stop it and resize it explicitly", c.Name, c.Settings.VMSize, v)
	}
	if req.Description == c.Description && maps.Equal(req.Tags, c.Tags) {
		return c, nil
	}
	c.Description, c.Tags = req.Description, req.Tags
	c.ModifiedBy, c.ModifiedAt = caller.Principal(), s.now()
	if err := s.Store.UpdateCompute(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Service) newOp(c *chub.Compute, name chub.OperationName, caller *chub.User) *chub.Operation {
	return &chub.Operation{
		ID: NewID(), ComputeID: c.ID, ResourceID: c.ResourceID(), Location: s.Region, Name: name,
		Trigger: chub.TriggerUser, Status: chub.OpInProgress, StartTime: s.now(), RequestedBy: caller.Principal(),
	}
}

func (s *Service) wake(id string) {
	if s.Wake != nil {
		s.Wake(id)
	}
}

// transition is one user operation's rule: the states it is accepted in
// and the state it moves the instance to.
type transition struct {
	from    []chub.State
	via     chub.State
	desired chub.Desired
	restart bool
}

var transitions = map[chub.OperationName]transition{
	chub.OpStart:   {from: []chub.State{chub.StateStopped, chub.StateUnusable}, via: chub.StateStarting, desired: chub.DesiredRunning},
	chub.OpStop:    {from: []chub.State{chub.StateRunning, chub.StateJobRunning}, via: chub.StateStopping, desired: chub.DesiredStopped},
	chub.OpRestart: {from: []chub.State{chub.StateRunning}, via: chub.StateRestarting, desired: chub.DesiredRunning, restart: true},
}

// Act starts a start, stop or restart operation. A stop waits for the
// instance's running jobs to end (queued ones stay Queued); Stop with
// cancelJobs cancels them instead.
func (s *Service) Act(ctx context.Context, caller *chub.User, scope chub.WorkspaceScope, name string, opName chub.OperationName) (*chub.Compute, *chub.Operation, error) {
	return s.act(ctx, caller, scope, name, opName, nil)
}

// Stop starts a stop operation. Without cancelJobs the instance stays
// Stopping until its running jobs have ended (jobs still queued stay
// Queued and run after the next start); with cancelJobs every active job
// of the instance (queued or running) is canceled first, with the message
// "canceled: the instance was stopped with cancelJobs". The operation is
// recorded before the jobs are canceled, so a stop refused (another
// operation in flight, a wrong state) cancels nothing.
func (s *Service) Stop(ctx context.Context, caller *chub.User, scope chub.WorkspaceScope, name string, cancelJobs bool) (*chub.Compute, *chub.Operation, error) {
	var before func(*chub.Compute) error
	if cancelJobs && s.CancelJobs != nil {
		before = func(c *chub.Compute) error {
			if err := s.CancelJobs(ctx, c.ID, caller.Principal(), "the instance was stopped with cancelJobs"); err != nil {
				return fmt.Errorf("compute %q is stopping, but canceling its jobs failed: %w", c.Name, err)
			}
			return nil
		}
	}
	return s.act(ctx, caller, scope, name, chub.OpStop, before)
}

// act records the operation, runs beforeWake (if any) once it is recorded,
// then wakes the reconciler; beforeWake's error is returned with the
// recorded compute and operation.
func (s *Service) act(ctx context.Context, caller *chub.User, scope chub.WorkspaceScope, name string, opName chub.OperationName, beforeWake func(*chub.Compute) error) (*chub.Compute, *chub.Operation, error) {
	tr, ok := transitions[opName]
	if !ok {
		return nil, nil, fmt.Errorf("unknown operation %s", opName)
	}
	for attempt := 0; ; attempt++ {
		c, err := s.Store.GetCompute(ctx, scope, name)
		if err != nil {
			return nil, nil, err
		}
		if c.ActiveOperation != "" {
			return nil, nil, activeOpErr(c)
		}
		if !stateIn(c.State, tr.from) {
			return nil, nil, chub.Conflict("InvalidComputeState", "name",
				"cannot %s compute %q: it is %s; %s is allowed only when it is %s", strings.ToLower(string(opName)), c.Name, c.State, strings.ToLower(string(opName)), joinStates(tr.from))
		}
		if err := s.quotaForAct(ctx, c, opName); err != nil {
			return nil, nil, err
		}
		op := s.newOp(c, opName, caller)
		c.Desired, c.State, c.ActiveOperation, c.RestartPending = tr.desired, tr.via, op.ID, tr.restart
		c.Errors = nil
		c.LastOperation = &chub.LastOperation{OperationName: opName, OperationTime: op.StartTime, OperationStatus: string(chub.OpInProgress), OperationTrigger: chub.TriggerUser}
		err = s.Store.UpdateCompute(ctx, c, op)
		if chub.ErrorKind(err) == chub.KindConflict && attempt < 3 {
			continue // raced with the reconciler: re-read and re-check
		}
		if err != nil {
			return nil, nil, err
		}
		var berr error
		if beforeWake != nil {
			berr = beforeWake(c)
		}
		s.wake(c.ID)
		return c, op, berr
	}
}

// releasesOnStop reports whether the instance gives its cores back when stopped.
func releasesOnStop(c *chub.Compute) bool {
	return c.Settings.ReleaseQuotaOnStop != nil && *c.Settings.ReleaseQuotaOnStop
}

// quotaForAct takes the instance's cores again before a start when it gave
// them back at stop, and gives them back at a stop when it should. A stopped
// instance otherwise keeps its cores, so it can always start again.
func (s *Service) quotaForAct(ctx context.Context, c *chub.Compute, op chub.OperationName) error {
	if !releasesOnStop(c) {
		return nil
	}
	switch op {
	case chub.OpStart:
		size, ok := s.Catalog().Lookup(c.Settings.VMSize)
		if !ok {
			return chub.Invalid("InvalidVmSize", "properties.properties.vmSize", "VM size %q is no longer offered; resize the instance", c.Settings.VMSize)
		}
		return s.Store.HoldQuota(ctx, chub.QuotaHold{HolderID: c.ID, Subscription: c.Scope.Subscription, Location: c.Location, Family: size.Family, Cores: int64(size.VCPUs)})
	case chub.OpStop:
		return s.Store.ReleaseQuota(ctx, c.ID)
	}
	return nil
}

// Resize changes the VM size of a stopped instance, holding the new size's
// cores against the quota instead of the old ones.
func (s *Service) Resize(ctx context.Context, caller *chub.User, scope chub.WorkspaceScope, name, target string) (*chub.Compute, *chub.Operation, error) {
	c, err := s.Store.GetCompute(ctx, scope, name)
	if err != nil {
		return nil, nil, err
	}
	if c.ActiveOperation != "" {
		return nil, nil, activeOpErr(c)
	}
	if c.State != chub.StateStopped {
		return nil, nil, chub.Conflict("InvalidComputeState", "name", "compute %q is %s; stop it before resizing (chub computetarget stop computeinstance -n %s)", c.Name, c.State, c.Name)
	}
	size, ok := s.Catalog().Lookup(target)
	if !ok {
		return nil, nil, chub.Invalid("InvalidVmSize", "targetVMSize", "VM size %q is not offered in region %q; list the sizes with 'chub vmsize list'", target, s.Region)
	}
	old, _ := s.Catalog().Lookup(c.Settings.VMSize)
	if s.CheckSize != nil {
		if err := s.CheckSize(SpecFor(c, size)); err != nil {
			return nil, nil, err
		}
	}
	held := !releasesOnStop(c)
	if held {
		if err := s.Store.ReleaseQuota(ctx, c.ID); err != nil {
			return nil, nil, err
		}
		if err := s.Store.HoldQuota(ctx, chub.QuotaHold{HolderID: c.ID, Subscription: c.Scope.Subscription, Location: c.Location, Family: size.Family, Cores: int64(size.VCPUs)}); err != nil {
			// Take the old size's cores back: they were ours a moment ago.
			s.Store.HoldQuota(context.WithoutCancel(ctx), chub.QuotaHold{HolderID: c.ID, Subscription: c.Scope.Subscription, Location: c.Location, Family: old.Family, Cores: int64(old.VCPUs)})
			return nil, nil, err
		}
	}
	op := s.newOp(c, chub.OpResize, caller)
	op.Status, op.EndTime = chub.OpSucceeded, s.now()
	c.Settings.VMSize = size.Name
	c.ModifiedBy, c.ModifiedAt = caller.Principal(), s.now()
	c.LastOperation = &chub.LastOperation{OperationName: chub.OpResize, OperationTime: op.StartTime, OperationStatus: string(chub.OpSucceeded), OperationTrigger: chub.TriggerUser}
	if err := s.Store.UpdateCompute(ctx, c, op); err != nil {
		return nil, nil, err
	}
	return c, op, nil
}

// Delete starts deleting the instance, whatever its state, cancelling any
// operation in flight, and cancels the instance's jobs (CancelJobs, with
// the message "the instance was deleted"). It returns a nil operation when
// nothing exists.
func (s *Service) Delete(ctx context.Context, caller *chub.User, scope chub.WorkspaceScope, name string) (*chub.Operation, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.Store.GetCompute(ctx, scope, name)
		if chub.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if c.Desired == chub.DesiredDeleted {
			op, err := s.Store.GetOperation(ctx, c.ActiveOperation)
			if err != nil {
				return nil, err
			}
			return op, nil // already being deleted: the same operation answers
		}
		ops := []*chub.Operation{}
		if c.ActiveOperation != "" {
			prev, err := s.Store.GetOperation(ctx, c.ActiveOperation)
			if err == nil && !prev.Done() {
				prev.Status, prev.EndTime = chub.OpCanceled, s.now()
				prev.Error = &chub.ErrorDetail{Code: "OperationCanceled", Message: fmt.Sprintf("the %s of compute %q was canceled because the compute is being deleted", strings.ToLower(string(prev.Name)), c.Name)}
				ops = append(ops, prev)
			}
		}
		op := s.newOp(c, chub.OpDelete, caller)
		ops = append(ops, op)
		c.Desired, c.State, c.ActiveOperation, c.RestartPending = chub.DesiredDeleted, chub.StateDeleting, op.ID, false
		c.LastOperation = &chub.LastOperation{OperationName: chub.OpDelete, OperationTime: op.StartTime, OperationStatus: string(chub.OpInProgress), OperationTrigger: chub.TriggerUser}
		err = s.Store.UpdateCompute(ctx, c, ops...)
		var ce *chub.Error
		if errors.As(err, &ce) && ce.Kind == chub.KindConflict && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The instance's jobs end with it: queued ones at once, running
		// ones once their processes are gone (or the instance is).
		var cerr error
		if s.CancelJobs != nil {
			if err := s.CancelJobs(ctx, c.ID, caller.Principal(), "the instance was deleted"); err != nil {
				cerr = fmt.Errorf("compute %q is being deleted, but canceling its jobs failed: %w", c.Name, err)
			}
		}
		s.wake(c.ID)
		return op, cerr
	}
}

func stateIn(s chub.State, set []chub.State) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func joinStates(set []chub.State) string {
	parts := make([]string, len(set))
	for i, s := range set {
		parts[i] = string(s)
	}
	return strings.Join(parts, " or ")
}
