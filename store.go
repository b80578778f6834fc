package chub

import "context"

// Page selects a slice of a list.
type Page struct {
	Skip  int
	Limit int
}

// Store keeps all of ComputeHub's state. Every method runs in one
// transaction. Writes of a Compute check its Version and fail with a
// KindConflict error when another writer got there first; on success the
// Version passed in is advanced.
type Store interface {
	JobStore

	CreateUser(ctx context.Context, u *User) error
	UserByName(ctx context.Context, name string) (*User, error)
	UserByID(ctx context.Context, id string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	CreateToken(ctx context.Context, t *Token) error
	// Authenticate finds the user owning an unexpired token with the given hash.
	Authenticate(ctx context.Context, tokenHash string) (*User, error)

	PutWorkspace(ctx context.Context, w *Workspace) (created bool, err error)
	GetWorkspace(ctx context.Context, s WorkspaceScope) (*Workspace, error)
	ListWorkspaces(ctx context.Context, subscription, resourceGroup string) ([]*Workspace, error)
	// DeleteWorkspace refuses with KindConflict while the workspace has computes.
	DeleteWorkspace(ctx context.Context, s WorkspaceScope) error

	// CreateCompute inserts the compute and its create operation; a name taken
	// anywhere in the region is a KindConflict error.
	CreateCompute(ctx context.Context, c *Compute, op *Operation) error
	GetCompute(ctx context.Context, s WorkspaceScope, name string) (*Compute, error)
	GetComputeByID(ctx context.Context, id string) (*Compute, error)
	// ComputeNameTaken reports whether any workspace holds a compute of that name.
	ComputeNameTaken(ctx context.Context, name string) (bool, error)
	ListComputes(ctx context.Context, s WorkspaceScope, p Page) ([]*Compute, error)
	// ListAllComputes lists every compute of every workspace (for the reconciler).
	ListAllComputes(ctx context.Context) ([]*Compute, error)
	// UpdateCompute writes c (version-checked) and upserts ops, atomically.
	UpdateCompute(ctx context.Context, c *Compute, ops ...*Operation) error
	// RemoveCompute deletes c's row (version-checked) and upserts ops, atomically.
	RemoveCompute(ctx context.Context, c *Compute, ops ...*Operation) error

	GetOperation(ctx context.Context, id string) (*Operation, error)

	DeleteUser(ctx context.Context, id string) error
	SetPassword(ctx context.Context, userID, hash string) error
	PasswordHash(ctx context.Context, userID string) (string, error)
	ListTokens(ctx context.Context, userID string) ([]*Token, error)
	RevokeToken(ctx context.Context, userID, tokenID string) error

	ListRoleDefinitions(ctx context.Context) ([]RoleDefinition, error)
	// PutRoleDefinition creates or replaces a custom role; it refuses with
	// KindConflict (RoleDefinitionHasAssignments) a role that would no
	// longer be assignable where it is assigned, atomically.
	PutRoleDefinition(ctx context.Context, r RoleDefinition) error
	// DeleteRoleDefinition refuses with KindConflict while the role is assigned.
	DeleteRoleDefinition(ctx context.Context, id string) error
	// ListRoleAssignments lists a principal's assignments, or all when principalID is "".
	ListRoleAssignments(ctx context.Context, principalID string) ([]RoleAssignment, error)
	// CreateRoleAssignment refuses with KindInvalid an assignment of a
	// custom role at a scope it is not assignable at, atomically.
	CreateRoleAssignment(ctx context.Context, a RoleAssignment) error
	DeleteRoleAssignment(ctx context.Context, id string) error

	AppendAudit(ctx context.Context, e *AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// ListQuotas lists the limits set for a subscription in a location.
	ListQuotas(ctx context.Context, subscription, location string) ([]Quota, error)
	SetQuota(ctx context.Context, q Quota) error
	// Usage sums the cores a subscription holds in a location.
	Usage(ctx context.Context, subscription, location string) (Usage, error)
	// HoldQuota takes cores for a holder if its subscription's limits
	// allow, atomically; holding again what is already held is a no-op.
	HoldQuota(ctx context.Context, h QuotaHold) error
	ReleaseQuota(ctx context.Context, holderID string) error

	Close() error
}
