package chub

import "context"

// Authorizer decides whether a user may perform an action (an Azure action
// string such as Microsoft.MachineLearningServices/workspaces/computes/start/action)
// at a scope (an ARM resource id). It returns a KindForbidden error to refuse.
type Authorizer interface {
	Authorize(ctx context.Context, u *User, action, scope string) error
}

// Azure's actions on computes and workspaces.
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
	ActionLocationRead     = "Microsoft.MachineLearningServices/locations/read"
	ActionQuotaWrite       = "Microsoft.MachineLearningServices/locations/updateQuotas/action"
	ActionUsersManage      = "ComputeHub/users/write"
)
