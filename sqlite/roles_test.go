package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestRoleScopesStayConsistent: a custom role is assigned only where it is
// assignable, and cannot be narrowed below where it is assigned.
func TestRoleScopesStayConsistent(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	u, _ := seed(t, db)
	ws := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
	role := chub.RoleDefinition{ID: "r1", Name: "Viewer", IsCustom: true, Actions: []string{"*/read"}, AssignableScopes: []string{ws}}
	if err := db.PutRoleDefinition(ctx, role); err != nil {
		t.Fatal(err)
	}
	assign := func(id, scope string) error {
		return db.CreateRoleAssignment(ctx, chub.RoleAssignment{ID: id, PrincipalID: u.ID, RoleDefinitionID: "r1", Scope: scope, CreatedAt: time.Now(), CreatedBy: "t"})
	}
	if err := assign("a0", "/subscriptions/s"); chub.ErrorKind(err) != chub.KindInvalid {
		t.Fatalf("assigning above the assignable scope: %v; want KindInvalid", err)
	}
	if err := assign("a1", ws+"/computes/c1"); err != nil {
		t.Fatalf("assigning below the assignable scope: %v", err)
	}
	role.AssignableScopes = []string{ws + "/computes/c2"}
	if err := db.PutRoleDefinition(ctx, role); chub.ErrorKind(err) != chub.KindConflict {
		t.Fatalf("narrowing below an assignment: %v; want KindConflict", err)
	}
	role.AssignableScopes = []string{ws + "/computes/C1", "/subscriptions/t"}
	if err := db.PutRoleDefinition(ctx, role); err != nil {
		t.Fatalf("narrowing to the assignment's own scope: %v", err)
	}
	// A built-in role (not stored) is assignable anywhere.
	if err := db.CreateRoleAssignment(ctx, chub.RoleAssignment{ID: "a2", PrincipalID: u.ID, RoleDefinitionID: "builtin", Scope: "/", CreatedAt: time.Now(), CreatedBy: "t"}); err != nil {
		t.Fatal(err)
	}
}
