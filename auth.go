package chub

import "context"

// Authorizer decides whether a user may perform an action (an Azure action
// string such as Microsoft.MachineLearningServices/workspaces/computes/start/action)
// at a scope (an ARM resource id). It returns a KindForbidden error to refuse.
type Authorizer interface {
	Authorize(ctx context.Context, u *User, action, scope string) error
}

// RootScope is the scope above every subscription; user management and the
// audit log live there.
const RootScope = "/"

// Azure's actions on computes and workspaces, and ComputeHub's own.
const (
	ActionComputeRead      = "Microsoft.MachineLearningServices/workspaces/computes/read"
	ActionComputeWrite     = "Microsoft.MachineLearningServices/workspaces/computes/write"
	ActionComputeDelete    = "Microsoft.MachineLearningServices/workspaces/computes/delete"
	ActionComputeStart     = "Microsoft.MachineLearningServices/workspaces/computes/start/action"
	ActionComputeStop      = "Microsoft.MachineLearningServices/workspaces/computes/stop/action"
	ActionComputeRestart   = "Microsoft.MachineLearningServices/workspaces/computes/restart/action"
	ActionComputeListNode  = "Microsoft.MachineLearningServices/workspaces/computes/listNodes/action"
	ActionComputeAppAccess = "Microsoft.MachineLearningServices/workspaces/computes/applicationaccess/action"
	ActionWorkspaceRead    = "Microsoft.MachineLearningServices/workspaces/read"
	ActionWorkspaceWrite   = "Microsoft.MachineLearningServices/workspaces/write"
	ActionWorkspaceDelete  = "Microsoft.MachineLearningServices/workspaces/delete"
	ActionQuotaWrite       = "Microsoft.MachineLearningServices/locations/updateQuotas/action"
	ActionVMSizesRead      = "Microsoft.MachineLearningServices/locations/vmSizes/read"
	ActionUsagesRead       = "Microsoft.MachineLearningServices/locations/usages/read"
	ActionQuotasRead       = "Microsoft.MachineLearningServices/locations/quotas/read"
	ActionComputeResize    = "Microsoft.MachineLearningServices/workspaces/computes/resize/action"
	ActionRoleDefRead      = "Microsoft.Authorization/roleDefinitions/read"
	ActionRoleDefWrite     = "Microsoft.Authorization/roleDefinitions/write"
	ActionRoleDefDelete    = "Microsoft.Authorization/roleDefinitions/delete"
	ActionRoleAssignRead   = "Microsoft.Authorization/roleAssignments/read"
	ActionRoleAssignWrite  = "Microsoft.Authorization/roleAssignments/write"
	ActionRoleAssignDelete = "Microsoft.Authorization/roleAssignments/delete"
	ActionAuditRead        = "ComputeHub/auditLogs/read"
	ActionUsersRead        = "ComputeHub/users/read"
	ActionUsersManage      = "ComputeHub/users/write"
)
