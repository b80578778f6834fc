package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// wsID is the ARM id of the bootstrapped workspace.
const wsID = wsPath

// newUser creates a user with a token and returns its id and client.
func newUser(t *testing.T, s *server, admin *client.Client, name string) (string, *client.Client, string) {
	t.Helper()
	u, err := admin.CreateUser(ctx(t), name, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx(t), name, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return u.ObjectID, s.clientWithToken(tok.Token), tok.Token
}

// createFor makes an instance as admin, assigned to a user when assignee is set.
func createFor(t *testing.T, c *client.Client, name, assignee string) {
	t.Helper()
	req := createReq(name, "Standard_B1s")
	if assignee != "" {
		req.Settings.PersonalComputeInstanceSettings = &chub.PersonalComputeInstanceSettings{
			AssignedUser: &chub.AssignedUser{ObjectID: assignee, TenantID: "00000000-0000-0000-0000-000000000001"}}
	}
	_, op, err := c.CreateCompute(ctx(t), req)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := c.Wait(ctx(t), op, "", name, nil); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// TestAuthorizationMatrix runs every compute endpoint against every
// built-in role, on the caller's own instance, an instance assigned to the
// caller and someone else's, from one table of expectations. Allowed calls
// are made so that they pass authorization and then stop harmlessly (a
// 400 or 409 after the check), except start/stop/restart, which run.
func TestAuthorizationMatrix(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	// target names: own (created by the caller), assigned (created for the caller), others (someone else's)
	type target string
	const (
		own      target = "own"
		assigned target = "assigned"
		others   target = "others"
	)
	type endpoint struct {
		name string
		do   func(c *client.Client, tok, inst string) int // HTTP status
	}
	raw := func(tok, method, path, body string) int { return call(t, s, tok, method, path, body).status }
	calls := []endpoint{
		{"get", func(c *client.Client, tok, inst string) int {
			return raw(tok, "GET", wsPath+"/computes/"+inst+apiV, "")
		}},
		{"listNodes", func(c *client.Client, tok, inst string) int {
			return raw(tok, "POST", wsPath+"/computes/"+inst+"/listNodes"+apiV, "")
		}},
		{"update", func(c *client.Client, tok, inst string) int { // vmSize change: 400 once authorized
			return raw(tok, "PUT", wsPath+"/computes/"+inst+apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS4_v2"}}}`)
		}},
		{"create", func(c *client.Client, tok, inst string) int { // unknown size: 400 once authorized
			return raw(tok, "PUT", wsPath+"/computes/"+inst+"-new"+apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_Nope"}}}`)
		}},
		{"delete", func(c *client.Client, tok, inst string) int { // Detach: 400 once authorized
			return raw(tok, "DELETE", wsPath+"/computes/"+inst+apiV+"&underlyingResourceAction=Detach", "")
		}},
		{"stop", actCall(t, s, chub.OpStop)},
		{"start", actCall(t, s, chub.OpStart)},
		{"restart", actCall(t, s, chub.OpRestart)},
		{"exec", func(c *client.Client, tok, inst string) int {
			_, err := c.Exec(ctx(t), "", inst, client.ExecOptions{Command: []string{"true"}})
			if err == nil {
				return 200
			}
			if ce, ok := err.(*client.Error); ok {
				return ce.StatusCode
			}
			t.Fatalf("exec: %v", err)
			return 0
		}},
	}
	// want[role][call] gives the targets on which the call is allowed.
	all := []target{own, assigned, others}
	mineOnly := []target{own, assigned}
	manage := map[string][]target{"get": all, "listNodes": all, "update": all, "create": all, "delete": all, "stop": all, "start": all, "restart": all, "exec": mineOnly}
	want := map[string]map[string][]target{
		"Owner":                    manage,
		"Contributor":              manage,
		"AzureML Compute Operator": manage,
		"Reader":                   {"get": all},
		"AzureML Data Scientist":   {"get": all, "listNodes": all, "stop": all, "start": all, "restart": all, "exec": mineOnly},
	}
	i := 0
	for role, allowed := range want {
		i++
		user := fmt.Sprintf("user%c", 'a'+i)
		uid, uc, tok := newUser(t, s, admin, user)
		// The caller's own instance: created while a Contributor.
		contrib, err := admin.AssignRole(ctx(t), uid, "Contributor", wsID)
		if err != nil {
			t.Fatal(err)
		}
		inst := map[target]string{own: "own-" + user, assigned: "asg-" + user, others: "oth-" + user}
		create(t, uc, inst[own], "Standard_B1s")
		if err := admin.DeleteRoleAssignment(ctx(t), wsID, contrib.Name); err != nil {
			t.Fatal(err)
		}
		createFor(t, admin, inst[assigned], uid)
		createFor(t, admin, inst[others], "")
		if _, err := admin.AssignRole(ctx(t), uid, role, wsID); err != nil {
			t.Fatal(err)
		}
		for _, cl := range calls {
			for _, tg := range all {
				status := cl.do(uc, tok, inst[tg])
				ok := slices.Contains(allowed[cl.name], tg)
				if got := status != http.StatusForbidden; got != ok {
					t.Errorf("%s: %s on %s instance: status %d; want allowed=%v", role, cl.name, tg, status, ok)
				}
			}
		}
		// Lists show what the caller may read.
		list := call(t, s, tok, "GET", wsPath+"/computes"+apiV, "")
		if list.status != 200 || len(list.body["value"].([]any)) == 0 {
			t.Errorf("%s: list status %d", role, list.status)
		}
		for _, tg := range all {
			if op, err := admin.DeleteCompute(ctx(t), "", inst[tg]); err == nil && op != nil {
				admin.Wait(ctx(t), op, "", "", nil)
			}
		}
	}
	// Someone with no role sees nothing and may do nothing.
	_, _, tok := newUser(t, s, admin, "nobody")
	if r := call(t, s, tok, "GET", wsPath+"/computes"+apiV, ""); r.status != 403 {
		t.Errorf("a user without roles listing computes: %d; want 403", r.status)
	}
	// Refusals name the principal, the action and the scope.
	r := call(t, s, tok, "POST", wsPath+"/computes/x-y/start"+apiV, "")
	if msg := r.errorField("message"); r.errorField("code") != "AuthorizationFailed" || !strings.Contains(msg, "nobody") || !strings.Contains(msg, chub.ActionComputeStart) || !strings.Contains(msg, "/computes/x-y") {
		t.Errorf("refusal message: %v", r.body)
	}
}

// actCall brings the instance to the state op starts from (as admin), then
// asks for op as the caller and waits for it to finish.
func actCall(t *testing.T, s *server, op chub.OperationName) func(c *client.Client, tok, inst string) int {
	return func(c *client.Client, tok, inst string) int {
		admin := s.client()
		from, fix := chub.StateRunning, chub.OpStart
		if op == chub.OpStart {
			from, fix = chub.StateStopped, chub.OpStop
		}
		if state(t, admin, inst) != from {
			act(t, admin, inst, fix)
		}
		o, err := c.Act(ctx(t), "", inst, op)
		if err != nil {
			if ce, ok := err.(*client.Error); ok {
				return ce.StatusCode
			}
			t.Fatalf("%s %s: %v", op, inst, err)
		}
		if _, err := admin.Wait(ctx(t), o, "", inst, nil); err != nil {
			t.Fatalf("%s %s: %v", op, inst, err)
		}
		return http.StatusAccepted
	}
}
