// Package access decides who may do what: role-based access control with
// Azure's role definitions, actions, wildcards and scopes.
package access

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/computehub/chub"
)

// The ids of Azure's built-in roles, the same GUIDs Azure uses.
const (
	OwnerID           = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	ContributorID     = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	ReaderID          = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	DataScientistID   = "f6c7c914-8db3-469d-8ca1-694a8f32e121"
	ComputeOperatorID = "e503ece1-11d0-4e8e-8e2c-7a6c3bf38815"
)

const ml = "Microsoft.MachineLearningServices/"

// BuiltinRoles are Azure's built-in roles as they apply to workspaces,
// computes and jobs, plus ComputeHub's user management (Owner only).
func BuiltinRoles() []chub.RoleDefinition {
	all := []string{"/"}
	return []chub.RoleDefinition{
		{Name: "Owner", ID: OwnerID, Description: "Grants full access to manage all resources, including the ability to assign roles.",
			Actions: []string{"*"}, NotActions: []string{}, AssignableScopes: all},
		{Name: "Contributor", ID: ContributorID, Description: "Grants full access to manage all resources, but does not allow you to assign roles or manage users.",
			Actions: []string{"*"}, NotActions: []string{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action", "ComputeHub/users/*", "ComputeHub/auditLogs/*"},
			AssignableScopes: all},
		{Name: "Reader", ID: ReaderID, Description: "View all resources, but does not allow you to make any changes.",
			Actions: []string{"*/read"}, NotActions: []string{"ComputeHub/users/*", "ComputeHub/auditLogs/*"}, AssignableScopes: all},
		{Name: "AzureML Data Scientist", ID: DataScientistID,
			Description: "Can perform all actions within an Azure Machine Learning workspace, except for creating or deleting compute resources and modifying the workspace itself.",
			Actions:     []string{ml + "workspaces/read", ml + "workspaces/*/read", ml + "workspaces/*/action", ml + "workspaces/*/delete", ml + "workspaces/*/write", ml + "locations/*/read"},
			NotActions: []string{ml + "workspaces/delete", ml + "workspaces/write", ml + "workspaces/computes/write", ml + "workspaces/computes/delete",
				ml + "workspaces/computes/*/write", ml + "workspaces/computes/*/delete", ml + "workspaces/computes/resize/action", "Microsoft.Authorization/*",
				ml + "workspaces/computes/listKeys/action", ml + "workspaces/listKeys/action"},
			AssignableScopes: all},
		{Name: "AzureML Compute Operator", ID: ComputeOperatorID,
			Description: "Can access and perform CRUD operations on Machine Learning Services managed compute resources (including compute instances).",
			Actions:     []string{"Microsoft.Authorization/*/read", ml + "workspaces/read", ml + "workspaces/computes/*", ml + "locations/*/read"},
			NotActions:  []string{}, AssignableScopes: all},
	}
}

var (
	patternMu sync.Mutex // guards patterns
	patterns  = map[string]*regexp.Regexp{}
)

// MatchAction reports whether an action matches a pattern as Azure matches
// them: case-insensitively, '*' standing for any run of characters.
func MatchAction(pattern, action string) bool {
	patternMu.Lock()
	re, ok := patterns[pattern]
	if !ok {
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		// (?s): '*' spans every character; a pattern that is not UTF-8
		// does not compile and matches nothing.
		re, _ = regexp.Compile("(?is)^" + strings.Join(parts, ".*") + "$")
		patterns[pattern] = re
	}
	patternMu.Unlock()
	return re != nil && re.MatchString(action)
}

// ScopeCovers reports whether an assignment at scope applies to resource:
// the same id or one below it, case-insensitively (chub.ScopeCovers).
func ScopeCovers(scope, resource string) bool { return chub.ScopeCovers(scope, resource) }

// Allows reports whether the role permits the action: some Action matches
// and no NotAction does.
func Allows(role chub.RoleDefinition, action string) bool {
	for _, n := range role.NotActions {
		if MatchAction(n, action) {
			return false
		}
	}
	for _, a := range role.Actions {
		if MatchAction(a, action) {
			return true
		}
	}
	return false
}

// RBAC is the chub.Authorizer of role-based access control: a user may do
// an action at a scope when a role assigned to them at that scope or above
// allows it.
type RBAC struct {
	Store chub.Store
}

// Roles lists the built-in roles followed by the custom ones.
func (a *RBAC) Roles(ctx context.Context) ([]chub.RoleDefinition, error) {
	custom, err := a.Store.ListRoleDefinitions(ctx)
	if err != nil {
		return nil, err
	}
	return append(BuiltinRoles(), custom...), nil
}

// Permitted reports whether u may do action at scope.
func (a *RBAC) Permitted(ctx context.Context, u *chub.User, action, scope string) (bool, error) {
	return a.permitted(ctx, u, action, func(assigned string) bool { return ScopeCovers(assigned, scope) })
}

// PermittedWithin reports whether u may do action at scope or anywhere
// below it: a role that allows it is assigned to u at scope, above it, or
// at a resource group, workspace or compute beneath it. It answers reads
// of what belongs to a whole subscription but serves every workspace in
// it, such as the region's VM size catalog.
func (a *RBAC) PermittedWithin(ctx context.Context, u *chub.User, action, scope string) (bool, error) {
	return a.permitted(ctx, u, action, func(assigned string) bool {
		return ScopeCovers(assigned, scope) || ScopeCovers(scope, assigned)
	})
}

// permitted reports whether a role assigned to u at a scope that applies
// allows the action.
func (a *RBAC) permitted(ctx context.Context, u *chub.User, action string, applies func(assigned string) bool) (bool, error) {
	assignments, err := a.Store.ListRoleAssignments(ctx, u.ID)
	if err != nil {
		return false, err
	}
	if len(assignments) == 0 {
		return false, nil
	}
	roles, err := a.Roles(ctx)
	if err != nil {
		return false, err
	}
	byID := map[string]chub.RoleDefinition{}
	for _, r := range roles {
		byID[strings.ToLower(r.ID)] = r
	}
	for _, as := range assignments {
		role, ok := byID[strings.ToLower(as.RoleDefinitionID)]
		if ok && applies(as.Scope) && Allows(role, action) {
			return true, nil
		}
	}
	return false, nil
}

// Authorize refuses with 403 AuthorizationFailed, naming the principal,
// the action and the scope.
func (a *RBAC) Authorize(ctx context.Context, u *chub.User, action, scope string) error {
	ok, err := a.Permitted(ctx, u, action, scope)
	if err != nil {
		return fmt.Errorf("authorize %s: %w", action, err)
	}
	if ok {
		return nil
	}
	return chub.Errorf(chub.KindForbidden, "AuthorizationFailed", scope,
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. Ask an Owner to assign you a role there (chub role assignment create --assignee %s --role ROLE --scope %s).",
		u.Name, u.ID, action, scope, u.Name, scope)
}
