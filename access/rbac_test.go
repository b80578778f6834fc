package access

import (
	"context"
	"testing"

	"github.com/computehub/chub"
)

func role(t *testing.T, name string) chub.RoleDefinition {
	t.Helper()
	for _, r := range BuiltinRoles() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no built-in role %s", name)
	return chub.RoleDefinition{}
}

func TestBuiltinRoles(t *testing.T) {
	cases := []struct {
		role, action string
		want         bool
	}{
		{"Owner", chub.ActionComputeWrite, true},
		{"Owner", chub.ActionRoleAssignWrite, true},
		{"Owner", chub.ActionUsersManage, true},
		{"Contributor", chub.ActionComputeDelete, true},
		{"Contributor", chub.ActionRoleAssignWrite, false},
		{"Contributor", chub.ActionUsersManage, false},
		{"Contributor", chub.ActionRoleAssignRead, true},
		{"Reader", chub.ActionComputeRead, true},
		{"Reader", chub.ActionWorkspaceRead, true},
		{"Reader", chub.ActionComputeStart, false},
		{"Reader", chub.ActionComputeAppAccess, false},
		{"AzureML Data Scientist", chub.ActionComputeRead, true},
		{"AzureML Data Scientist", chub.ActionComputeStart, true},
		{"AzureML Data Scientist", chub.ActionComputeStop, true},
		{"AzureML Data Scientist", chub.ActionComputeRestart, true},
		{"AzureML Data Scientist", chub.ActionComputeAppAccess, true},
		{"AzureML Data Scientist", chub.ActionComputeWrite, false},
		{"AzureML Data Scientist", chub.ActionComputeDelete, false},
		{"AzureML Data Scientist", chub.ActionWorkspaceWrite, false},
		{"AzureML Data Scientist", chub.ActionRoleAssignWrite, false},
		{"AzureML Data Scientist", chub.ActionVMSizesRead, true},
		{"AzureML Compute Operator", chub.ActionComputeWrite, true},
		{"AzureML Compute Operator", chub.ActionComputeAppAccess, true},
		{"AzureML Compute Operator", chub.ActionWorkspaceWrite, false},
		{"AzureML Compute Operator", chub.ActionRoleAssignWrite, false},
	}
	for _, tc := range cases {
		if got := Allows(role(t, tc.role), tc.action); got != tc.want {
			t.Errorf("%s allows %s = %v; want %v", tc.role, tc.action, got, tc.want)
		}
	}
}

func TestMatchAndScope(t *testing.T) {
	for _, tc := range []struct {
		pattern, action string
		want            bool
	}{
		{"*", "anything/at/all", true},
		{"*/read", "Microsoft.MachineLearningServices/workspaces/computes/read", true},
		{"microsoft.machinelearningservices/workspaces/*/read", "Microsoft.MachineLearningServices/workspaces/computes/read", true},
		{"Microsoft.MachineLearningServices/workspaces/*/read", "Microsoft.MachineLearningServices/workspaces/read", false},
		{"Microsoft.MachineLearningServices/workspaces/computes/*", "Microsoft.MachineLearningServices/workspaces/computes/start/action", true},
		{"a.b/c", "a.bxc", false},
	} {
		if got := MatchAction(tc.pattern, tc.action); got != tc.want {
			t.Errorf("MatchAction(%q, %q) = %v; want %v", tc.pattern, tc.action, got, tc.want)
		}
	}
	ws := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
	for _, tc := range []struct {
		scope, resource string
		want            bool
	}{
		{"/", ws, true},
		{"/subscriptions/S", ws + "/computes/c1", true},
		{ws, ws, true},
		{ws + "/computes/c1", ws + "/computes/c1", true},
		{ws + "/computes/c1", ws + "/computes/c10", false},
		{ws + "/computes/c1", ws, false},
		{"/subscriptions/s2", ws, false},
	} {
		if got := ScopeCovers(tc.scope, tc.resource); got != tc.want {
			t.Errorf("ScopeCovers(%q, %q) = %v; want %v", tc.scope, tc.resource, got, tc.want)
		}
	}
}

// assignments is the part of chub.Store that RBAC reads.
type assignments struct {
	chub.Store
	list []chub.RoleAssignment
}

func (s assignments) ListRoleAssignments(_ context.Context, principal string) ([]chub.RoleAssignment, error) {
	var out []chub.RoleAssignment
	for _, a := range s.list {
		if principal == "" || a.PrincipalID == principal {
			out = append(out, a)
		}
	}
	return out, nil
}

func (assignments) ListRoleDefinitions(context.Context) ([]chub.RoleDefinition, error) {
	return nil, nil
}

func TestPermittedWithin(t *testing.T) {
	ws := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
	a := &RBAC{Store: assignments{list: []chub.RoleAssignment{
		{PrincipalID: "wendy", RoleDefinitionID: ContributorID, Scope: ws},
		{PrincipalID: "olga", RoleDefinitionID: OwnerID, Scope: "/subscriptions/other"},
		{PrincipalID: "rita", RoleDefinitionID: ReaderID, Scope: "/subscriptions/S"},
		{PrincipalID: "carl", RoleDefinitionID: OwnerID, Scope: ws + "/computes/c1"},
	}}}
	for _, tc := range []struct {
		user          string
		within, exact bool
	}{
		{"wendy", true, false}, // a Contributor of a workspace in s
		{"olga", false, false}, // Owner of another subscription
		{"rita", true, true},   // Reader of the whole subscription
		{"carl", true, false},  // Owner of one compute in s
		{"nobody", false, false},
	} {
		u := &chub.User{ID: tc.user, Name: tc.user}
		within, err := a.PermittedWithin(context.Background(), u, chub.ActionVMSizesRead, "/subscriptions/s")
		if err != nil {
			t.Fatal(err)
		}
		exact, _ := a.Permitted(context.Background(), u, chub.ActionVMSizesRead, "/subscriptions/s")
		if within != tc.within || exact != tc.exact {
			t.Errorf("%s: PermittedWithin %v, Permitted %v; want %v and %v", tc.user, within, exact, tc.within, tc.exact)
		}
	}
}
