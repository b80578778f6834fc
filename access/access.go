// Package access decides who may do what. Until role-based access control
// arrives it applies one rule: administrators may do everything; other users
// may use workspaces and computes but not manage users, quotas or workspaces.
package access

import (
	"context"

	"github.com/computehub/chub"
)

// AdminOnly is a chub.Authorizer with the interim rule.
type AdminOnly struct{}

var adminActions = map[string]bool{
	chub.ActionUsersManage:     true,
	chub.ActionQuotaWrite:      true,
	chub.ActionWorkspaceWrite:  true,
	chub.ActionWorkspaceDelete: true,
}

// Authorize refuses admin actions to non-admins.
func (AdminOnly) Authorize(_ context.Context, u *chub.User, action, scope string) error {
	if u.Admin || !adminActions[action] {
		return nil
	}
	return chub.Errorf(chub.KindForbidden, "AuthorizationFailed", scope,
		"the client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s'", u.Name, u.ID, action, scope)
}
