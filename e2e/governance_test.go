package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
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

// TestCreateOnBehalfWithCLI: an admin creates an instance for a data
// scientist, who then starts, stops and opens it; the admin cannot open it.
func TestCreateOnBehalfWithCLI(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	uid, _, tok := newUser(t, s, admin, "dana")
	if _, _, code := s.chub(t, "", "role", "assignment", "create", "--assignee", "dana", "--role", "AzureML Data Scientist", "--scope", wsID); code != 0 {
		t.Fatal("role assignment create failed")
	}
	_, stderr, code := s.chub(t, "", "computetarget", "create", "computeinstance", "-n", "danas-box", "-s", "Standard_B1s",
		"--user-object-id", uid, "--user-tenant-id", "00000000-0000-0000-0000-000000000001")
	if code != 0 {
		t.Fatalf("create on behalf: %s", stderr)
	}
	dana := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return s.chubAs(t, tok, stdin, args...)
	}
	if out, _, code := dana("", "computetarget", "list", "--mine"); code != 0 || !strings.Contains(out, "danas-box") {
		t.Fatalf("dana's list --mine: %d %s", code, out)
	}
	for _, args := range [][]string{
		{"computetarget", "stop", "computeinstance", "-n", "danas-box"},
		{"computetarget", "start", "computeinstance", "-n", "danas-box"},
		{"computetarget", "restart", "computeinstance", "-n", "danas-box"},
	} {
		if _, stderr, code := dana("", args...); code != 0 {
			t.Fatalf("dana %v: %s", args, stderr)
		}
	}
	if out, _, code := dana("", "computetarget", "computeinstance", "exec", "-n", "danas-box", "--", "whoami"); code != 0 || out != "azureuser\n" {
		t.Fatalf("dana opening her instance: %d %q", code, out)
	}
	if _, stderr, code := dana("", "computetarget", "delete", "-n", "danas-box"); code == 0 || !strings.Contains(stderr, "AuthorizationFailed") {
		t.Fatalf("dana deleting: exit %d: %s; want AuthorizationFailed", code, stderr)
	}
	if _, stderr, code := s.chub(t, "", "computetarget", "computeinstance", "exec", "-n", "danas-box", "--", "true"); code == 0 || !strings.Contains(stderr, "403") {
		t.Fatalf("the admin opening dana's instance: exit %d: %s; want 403", code, stderr)
	}
	// "Only mine" is what I created or was assigned: dana sees her instance
	// but not the admin's own, though her role lets her read both.
	create(t, admin, "admins-box", "Standard_B1s")
	if out, _, _ := dana("", "computetarget", "list", "--mine"); strings.Contains(out, "admins-box") || !strings.Contains(out, "danas-box") {
		t.Fatalf("dana's list --mine:\n%s", out)
	}
	if out, _, _ := dana("", "computetarget", "list"); !strings.Contains(out, "admins-box") {
		t.Fatalf("dana's full list lacks the admin's instance:\n%s", out)
	}
	// The on-behalf instance names an existing user only.
	if _, stderr, code := s.chub(t, "", "computetarget", "create", "computeinstance", "-n", "ghost-box", "-s", "Standard_B1s",
		"--user-object-id", "11111111-2222-3333-4444-555555555555", "--user-tenant-id", "t"); code == 0 || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("create for a missing user: exit %d: %s", code, stderr)
	}
}

// TestQuota: 100 creates in parallel never go over the family limit,
// stopped instances keep their cores (unless releaseQuotaOnStop), usages
// match the instances that exist, and delete gives cores back.
func TestQuota(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	const family, limit = "standardBSFamily", 6 // Standard_B1s: 1 core
	if err := admin.SetQuota(ctx(t), "local", family, limit); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := []string{}, 0
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("q%02dx", i)
			_, _, err := admin.CreateCompute(ctx(t), createReq(name, "Standard_B1s"))
			mu.Lock()
			defer mu.Unlock()
			switch ce, _ := err.(*client.Error); {
			case err == nil:
				created = append(created, name)
			case ce != nil && ce.Code == "QuotaExceeded":
				refused++
				if !strings.Contains(ce.Message, "standardBSFamily") || !strings.Contains(ce.Message, "limit 6") {
					t.Errorf("quota message %q lacks the family and limit", ce.Message)
				}
			default:
				t.Errorf("create %s: %v", name, err)
			}
		}(i)
	}
	wg.Wait()
	if len(created) != limit || refused != 100-limit {
		t.Fatalf("created %d, refused %d; want %d and %d", len(created), refused, limit, 100-limit)
	}
	used := func() int64 {
		t.Helper()
		us, err := admin.Usages(ctx(t), "local")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			if u.Name.Value == family {
				if u.Limit != limit {
					t.Fatalf("usage limit %d; want %d", u.Limit, limit)
				}
				return u.CurrentValue
			}
		}
		t.Fatal("no usage line for the family")
		return 0
	}
	if got := used(); got != limit {
		t.Fatalf("usage %d; want %d", got, limit)
	}
	for _, n := range created {
		waitFor(t, 2*60e9, n+" running", func() bool { return state(t, admin, n) == chub.StateRunning })
	}
	// A stopped instance keeps its cores and can always start again.
	act(t, admin, created[0], chub.OpStop)
	if got := used(); got != limit {
		t.Fatalf("usage after a stop %d; want %d (stopped instances keep their cores)", got, limit)
	}
	if _, _, err := admin.CreateCompute(ctx(t), createReq("one-more", "Standard_B1s")); err == nil || err.(*client.Error).Code != "QuotaExceeded" {
		t.Fatalf("create while full: %v; want QuotaExceeded", err)
	}
	act(t, admin, created[0], chub.OpStart)
	// Delete gives cores back.
	op, err := admin.DeleteCompute(ctx(t), "", created[1])
	if err != nil {
		t.Fatal(err)
	}
	admin.Wait(ctx(t), op, "", "", nil)
	if got := used(); got != limit-1 {
		t.Fatalf("usage after a delete %d; want %d", got, limit-1)
	}
	// releaseQuotaOnStop: cores go back at stop and must be found again at start.
	yes := true
	req := createReq("releaser", "Standard_B1s")
	req.Settings.ReleaseQuotaOnStop = &yes
	if _, op, err := admin.CreateCompute(ctx(t), req); err != nil {
		t.Fatal(err)
	} else {
		admin.Wait(ctx(t), op, "", "releaser", nil)
	}
	act(t, admin, "releaser", chub.OpStop)
	if got := used(); got != limit-1 {
		t.Fatalf("usage after stopping a releaseQuotaOnStop instance %d; want %d", got, limit-1)
	}
	create(t, admin, "taker", "Standard_B1s") // takes the freed core
	if _, err := admin.Act(ctx(t), "", "releaser", chub.OpStart); err == nil || err.(*client.Error).Code != "QuotaExceeded" {
		t.Fatalf("start of a released instance with the quota full: %v; want QuotaExceeded", err)
	}
	// Resize of a stopped instance checks quota the same way.
	if err := admin.SetQuota(ctx(t), "local", "standardDSv2Family", 1); err != nil {
		t.Fatal(err)
	}
	act(t, admin, created[0], chub.OpStop)
	if _, err := admin.Resize(ctx(t), "", created[0], "Standard_DS2_v2"); err == nil || err.(*client.Error).Code != "QuotaExceeded" {
		t.Fatalf("resize over quota: %v; want QuotaExceeded", err)
	}
	if _, err := admin.Resize(ctx(t), "", created[0], "Standard_DS1_v2"); err != nil {
		t.Fatalf("resize within quota: %v", err)
	}
	if got := used(); got != limit-1 {
		t.Fatalf("usage after resizing one instance out of the family %d; want %d", got, limit-1)
	}
}

// TestAuditLog: changes, refusals and sign-ins are recorded, with no secret.
func TestAuditLog(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	_, _, tok := newUser(t, s, admin, "eve")
	if err := admin.SetPassword(ctx(t), "eve", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	call(t, s, tok, "PUT", wsPath+"/computes/evil-box"+apiV, ds1) // refused: no role
	create(t, admin, "audited", "Standard_B1s")
	bad := call(t, s, "", "POST", "/chub/v1/signin", `{"userName":"eve","password":"wrong password"}`)
	good := call(t, s, "", "POST", "/chub/v1/signin", `{"userName":"eve","password":"correct horse battery"}`)
	if bad.status != 401 || good.status != 200 || good.body["token"] == nil {
		t.Fatalf("sign-in: wrong password %d, right one %d", bad.status, good.status)
	}
	es, err := admin.Audit(ctx(t), "1h", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	find := func(pred func(chub.AuditEntry) bool) bool {
		for _, e := range es {
			if pred(e) {
				return true
			}
		}
		return false
	}
	checks := map[string]func(chub.AuditEntry) bool{
		"a refused create": func(e chub.AuditEntry) bool {
			return e.PrincipalName == "eve" && e.Result == "Denied" && e.Action == chub.ActionComputeWrite && strings.HasSuffix(e.Resource, "/evil-box")
		},
		"a create": func(e chub.AuditEntry) bool {
			return e.PrincipalName == "admin" && e.Result == "Succeeded" && e.Action == chub.ActionComputeWrite && strings.HasSuffix(e.Resource, "/audited")
		},
		"a failed sign-in": func(e chub.AuditEntry) bool {
			return e.PrincipalName == "eve" && e.Action == "ComputeHub/signin/action" && e.Result == "Denied"
		},
		"a sign-in": func(e chub.AuditEntry) bool {
			return e.PrincipalName == "eve" && e.Action == "ComputeHub/signin/action" && e.Result == "Succeeded"
		},
		"a user creation":  func(e chub.AuditEntry) bool { return e.Action == chub.ActionUsersManage && e.Result == "Succeeded" },
		"a client address": func(e chub.AuditEntry) bool { return e.ClientAddress == "127.0.0.1" && e.CorrelationID != "" },
	}
	for what, pred := range checks {
		if !find(pred) {
			t.Errorf("the audit log has no entry for %s", what)
		}
	}
	if got, _ := admin.Audit(ctx(t), "", "eve", "", 0); len(got) < 3 {
		t.Errorf("filter by principal: %d entries", len(got))
	}
	// No secret anywhere in the log.
	dump := fmt.Sprint(es)
	for _, secret := range []string{tok, s.token(), "correct horse battery", "wrong password", good.body["token"].(string)} {
		if strings.Contains(dump, secret) {
			t.Fatalf("the audit log contains a secret")
		}
	}
	// Readers of the log need the right: eve has none.
	if r := call(t, s, tok, "GET", "/chub/v1/auditLogs", ""); r.status != 403 {
		t.Fatalf("eve reading the audit log: %d; want 403", r.status)
	}
}
