package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/computehub/chub"
	"github.com/computehub/chub/access"
)

// foreignSub is a second subscription, with no workspace of the default's.
const foreignSub = "22222222-2222-2222-2222-222222222222"

const authz = "/providers/Microsoft.Authorization"

// roleBody is a custom role's PUT body.
func roleBody(name, action string, scopes ...string) string {
	return `{"properties":{"roleName":"` + name + `","type":"CustomRole","permissions":[{"actions":["` + action + `"],"notActions":[]}],"assignableScopes":["` +
		strings.Join(scopes, `","`) + `"]}}`
}

// TestRoleDefinitionRewrite replays the escalation of issue 8: the Owner
// of one compute rewrites a custom role assigned to him at / into
// actions ["*"], then makes himself Owner at / and mints a token for
// someone else. Every step must be refused, and the other role and
// assignment endpoints must check the scopes they touch, not only the
// URL's.
func TestRoleDefinitionRewrite(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	malID, _, malTok := newUser(t, s, admin, "mallory")
	bobID, _, _ := newUser(t, s, admin, "bob")
	box := wsPath + "/computes/mal-box"
	if _, err := admin.AssignRole(ctx(t), malID, "Owner", box); err != nil {
		t.Fatal(err)
	}
	// A harmless custom role, assignable and assigned at /.
	const viewer = "0a0b0c0d-1111-2222-3333-444455556666"
	if r := call(t, s, s.token(), "PUT", authz+"/roleDefinitions/"+viewer+apiV, roleBody("Compute Viewer", chub.ActionComputeRead, "/")); r.status != 201 {
		t.Fatalf("admin creating the viewer role: %d %v", r.status, r.body)
	}
	if _, err := admin.AssignRole(ctx(t), malID, viewer, "/"); err != nil {
		t.Fatal(err)
	}

	// 1. The rewrite, sent at the compute he owns, naming only that scope.
	r := call(t, s, malTok, "PUT", box+authz+"/roleDefinitions/"+viewer+apiV, roleBody("Compute Viewer", "*", box))
	if r.status != 403 || r.errorField("code") != "AuthorizationFailed" {
		t.Errorf("mallory rewriting a role assigned at / from his compute: %d %v; want 403 AuthorizationFailed", r.status, r.body)
	}
	// 2. Owner at / for himself.
	r = call(t, s, malTok, "PUT", authz+"/roleAssignments/"+"5a5b5c5d-1111-2222-3333-444455556666"+apiV,
		`{"properties":{"roleDefinitionId":"`+roleDefPath(access.OwnerID)+`","principalId":"`+malID+`"}}`)
	if r.status != 403 {
		t.Errorf("mallory assigning himself Owner at /: %d %v; want 403", r.status, r.body)
	}
	// 2b. Nor at a scope that climbs out of his compute with "..".
	r = call(t, s, malTok, "PUT", box+"/../../../../../../../.."+authz+"/roleAssignments/"+"5a5b5c5d-2222-2222-3333-444455556666"+apiV,
		`{"properties":{"roleDefinitionId":"`+roleDefPath(access.OwnerID)+`","principalId":"`+malID+`"}}`)
	if r.status == 201 || r.status == 200 {
		t.Errorf("mallory assigning himself Owner at his compute/../..: %d %v; want a refusal", r.status, r.body)
	}
	// 3. A token for bob.
	if r := call(t, s, malTok, "POST", "/chub/v1/users/bob/tokens", `{"name":"stolen"}`); r.status != 403 {
		t.Errorf("mallory minting a token for bob: %d %v; want 403", r.status, r.body)
	}
	// The role is unchanged.
	if r := call(t, s, s.token(), "GET", authz+"/roleDefinitions/"+viewer+apiV, ""); !strings.Contains(fmtBody(r), chub.ActionComputeRead) || strings.Contains(fmtBody(r), `"*"`) {
		t.Errorf("the viewer role after the attack: %v", r.body)
	}

	// Even an administrator cannot narrow a role below where it is assigned:
	// the refusal names the assignment's scope.
	r = call(t, s, s.token(), "PUT", authz+"/roleDefinitions/"+viewer+apiV, roleBody("Compute Viewer", chub.ActionComputeRead, wsPath))
	if r.status != 409 || r.errorField("code") != "RoleDefinitionHasAssignments" || !strings.Contains(r.errorField("message"), `"/"`) {
		t.Errorf("narrowing the viewer role below its assignment at /: %d %v; want 409 RoleDefinitionHasAssignments naming /", r.status, r.body)
	}
	// Widening, or changing actions, with write on every old and new scope, works.
	if r := call(t, s, s.token(), "PUT", authz+"/roleDefinitions/"+viewer+apiV, roleBody("Compute Viewer", chub.ActionComputeRead, "/", wsPath)); r.status != 200 && r.status != 201 {
		t.Errorf("admin updating the viewer role: %d %v", r.status, r.body)
	}
	// Built-in roles are immutable.
	if r := call(t, s, s.token(), "PUT", authz+"/roleDefinitions/"+access.OwnerID+apiV, roleBody("Owner", "*/read", "/")); r.status < 400 || r.status == 403 {
		t.Errorf("rewriting the built-in Owner: %d %v; want a refusal", r.status, r.body)
	}

	// Delete is authorized on every assignable scope of the role, not the
	// URL's: mallory cannot delete a role assignable at / from his compute.
	const other = "0a0b0c0d-7777-2222-3333-444455556666"
	if r := call(t, s, s.token(), "PUT", authz+"/roleDefinitions/"+other+apiV, roleBody("Unassigned", chub.ActionComputeRead, "/")); r.status != 201 {
		t.Fatalf("admin creating a second role: %d %v", r.status, r.body)
	}
	if r := call(t, s, malTok, "DELETE", box+authz+"/roleDefinitions/"+other+apiV, ""); r.status != 403 {
		t.Errorf("mallory deleting a role assignable at / from his compute: %d %v; want 403", r.status, r.body)
	}
	if r := call(t, s, s.token(), "DELETE", authz+"/roleDefinitions/"+viewer+apiV, ""); r.status != 409 || r.errorField("code") != "RoleDefinitionHasAssignments" {
		t.Errorf("deleting an assigned role: %d %v; want 409 RoleDefinitionHasAssignments", r.status, r.body)
	}
	// His own role, at his compute, he may make and delete.
	const mine = "0a0b0c0d-8888-2222-3333-444455556666"
	if r := call(t, s, malTok, "PUT", box+authz+"/roleDefinitions/"+mine+apiV, roleBody("Mallory's", "*", box)); r.status != 201 {
		t.Errorf("mallory creating a role at his compute: %d %v", r.status, r.body)
	}
	if r := call(t, s, malTok, "DELETE", authz+"/roleDefinitions/"+mine+apiV, ""); r.status != 200 {
		t.Errorf("mallory deleting his own role: %d %v", r.status, r.body)
	}

	// GET of an assignment checks the assignment's own scope: bob's role in
	// a foreign subscription is not readable through mallory's compute.
	bobs, err := admin.AssignRole(ctx(t), bobID, "Reader", "/subscriptions/"+foreignSub)
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, s, malTok, "GET", box+authz+"/roleAssignments/"+bobs.Name+apiV, ""); r.status != 404 {
		t.Errorf("mallory reading bob's assignment in another subscription through his compute: %d %v; want 404", r.status, r.body)
	}
	// ... and cannot delete it either.
	if r := call(t, s, malTok, "DELETE", box+authz+"/roleAssignments/"+bobs.Name+apiV, ""); r.status == 200 || r.status == 204 {
		t.Errorf("mallory deleting bob's assignment: %d", r.status)
	}
	if got, _ := admin.RoleAssignments(ctx(t), "/subscriptions/"+foreignSub, bobID); len(got) != 1 {
		t.Errorf("bob's assignments after mallory's attempts: %d; want 1", len(got))
	}
	// His compute lists the assignments that apply there (his own and
	// those above), never bob's in another subscription.
	r = call(t, s, malTok, "GET", box+authz+"/roleAssignments"+apiV, "")
	if r.status != 200 || strings.Contains(fmtBody(r), bobID) {
		t.Errorf("mallory's list at his compute: %d, shows bob: %v", r.status, strings.Contains(fmtBody(r), bobID))
	}
	// A role assignable at one compute cannot be assigned elsewhere.
	const narrow = "0a0b0c0d-9999-2222-3333-444455556666"
	if r := call(t, s, s.token(), "PUT", box+authz+"/roleDefinitions/"+narrow+apiV, roleBody("Narrow", "*", box)); r.status != 201 {
		t.Fatalf("admin creating a narrow role: %d %v", r.status, r.body)
	}
	r = call(t, s, s.token(), "PUT", wsPath+authz+"/roleAssignments/6a6b6c6d-1111-2222-3333-444455556666"+apiV,
		`{"properties":{"roleDefinitionId":"`+roleDefPath(narrow)+`","principalId":"`+bobID+`"}}`)
	if r.status != 400 || r.errorField("code") != "InvalidScope" {
		t.Errorf("assigning a compute-only role at the workspace: %d %v; want 400 InvalidScope", r.status, r.body)
	}
}

// TestWorkspaceScopedSizeCatalog: whoever has a role in a workspace may
// read the VM size catalog of its region (Studio's New form and the sizes
// shown in the list need it); a user with roles only in another
// subscription, or none, may not.
func TestWorkspaceScopedSizeCatalog(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	wid, _, wtok := newUser(t, s, admin, "wendy")
	if _, err := admin.AssignRole(ctx(t), wid, "Contributor", wsPath); err != nil {
		t.Fatal(err)
	}
	sizes := "/subscriptions/" + chubSub + "/providers/Microsoft.MachineLearningServices/locations/local/vmSizes" + apiV
	r := call(t, s, wtok, "GET", sizes, "")
	if r.status != 200 {
		t.Fatalf("a workspace Contributor reading the size catalog: %d %v; want 200", r.status, r.body)
	}
	list, _ := r.body["value"].([]any)
	if len(list) == 0 {
		t.Fatalf("a workspace Contributor sees no sizes")
	}
	first, _ := list[0].(map[string]any)
	if first["vCPUs"] == nil || first["memoryGB"] == nil {
		t.Errorf("sizes without cores or memory: %v", first)
	}
	// And the cores used and left, which the New form shows.
	if r := call(t, s, wtok, "GET", strings.Replace(sizes, "/vmSizes", "/usages", 1), ""); r.status != 200 {
		t.Errorf("a workspace Contributor reading the usages: %d %v; want 200", r.status, r.body)
	}
	oid, _, otok := newUser(t, s, admin, "olga")
	if _, err := admin.AssignRole(ctx(t), oid, "Owner", "/subscriptions/"+foreignSub); err != nil {
		t.Fatal(err)
	}
	if r := call(t, s, otok, "GET", sizes, ""); r.status != 403 {
		t.Errorf("the Owner of another subscription reading this one's sizes: %d; want 403", r.status)
	}
	_, _, ntok := newUser(t, s, admin, "nobody")
	if r := call(t, s, ntok, "GET", sizes, ""); r.status != 403 {
		t.Errorf("a user without roles reading the sizes: %d; want 403", r.status)
	}
}

func roleDefPath(id string) string { return authz + "/roleDefinitions/" + id }

// fmtBody is an answer's body as compact JSON.
func fmtBody(r apiResult) string {
	b, _ := json.Marshal(r.body)
	return string(b)
}
