package e2e

import (
	"testing"
)

// TestOnlyTheUserChangesCustomServices: the custom services of an
// instance run inside it, so only its user may change them; an
// administrator or an Owner of the workspace who is not its user is
// refused (issue 8, finding 6).
func TestOnlyTheUserChangesCustomServices(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	aid, alice, atok := newUser(t, s, admin, "alice")
	if _, err := admin.AssignRole(ctx(t), aid, "Contributor", wsPath); err != nil {
		t.Fatal(err)
	}
	oid, _, otok := newUser(t, s, admin, "oscar")
	if _, err := admin.AssignRole(ctx(t), oid, "Owner", wsPath); err != nil {
		t.Fatal(err)
	}
	if _, _, err := alice.CreateCompute(ctx(t), createReq("alice-box", "Standard_B1s")); err != nil {
		t.Fatal(err)
	}
	path := wsPath + "/computes/alice-box/customServices" + apiV
	evil := `[{"name":"evil","endpoints":[{"protocol":"http","target":8001}],"additionalProperties":{"command":["sh","-c","id > /tmp/owned; sleep 1000"]}}]`
	for who, tok := range map[string]string{"the administrator": s.token(), "a workspace Owner": otok} {
		if r := call(t, s, tok, "POST", path, evil); r.status != 403 || r.errorField("code") != "AuthorizationFailed" {
			t.Errorf("%s replacing alice's custom services: %d %v; want 403 AuthorizationFailed", who, r.status, r.body)
		}
	}
	c, err := alice.GetCompute(ctx(t), "", "alice-box")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Properties.Properties.CustomServices); n != 0 {
		t.Errorf("alice's instance has %d custom services after the refusals; want 0", n)
	}
	// Nor can a create on her behalf bring custom services along.
	body := `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_B1s","customServices":` + evil +
		`,"personalComputeInstanceSettings":{"assignedUser":{"objectId":"` + aid + `","tenantId":"00000000-0000-0000-0000-000000000001"}}}}}`
	if r := call(t, s, s.token(), "PUT", wsPath+"/computes/for-alice"+apiV, body); r.status != 403 {
		t.Errorf("the administrator creating an instance for alice with custom services: %d %v; want 403", r.status, r.body)
		if r.status == 201 {
			if op, err := admin.DeleteCompute(ctx(t), "", "for-alice"); err == nil && op != nil {
				admin.Wait(ctx(t), op, "", "", nil)
			}
		}
	}
	if r := call(t, s, atok, "POST", path, `[{"name":"web","endpoints":[{"protocol":"http","target":8001}],"additionalProperties":{"command":["sleep","1000"]}}]`); r.status != 200 {
		t.Errorf("alice changing her own custom services: %d %v; want 200", r.status, r.body)
	}
}
