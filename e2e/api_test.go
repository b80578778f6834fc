package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

const (
	apiV   = "?api-version=2025-06-01"
	wsPath = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default"
)

type apiResult struct {
	status int
	header http.Header
	body   map[string]any
}

// call sends one raw request, as any HTTP client would.
func call(t *testing.T, s *server, token, method, path, body string) apiResult {
	t.Helper()
	hc, err := rawHTTP(filepath.Join(s.dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, "https://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := apiResult{status: resp.StatusCode, header: resp.Header}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &r.body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
		}
	}
	return r
}

func (r apiResult) errorField(f string) string {
	e, _ := r.body["error"].(map[string]any)
	v, _ := e[f].(string)
	return v
}

const ds1 = `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"STANDARD_DS1_V2"}}}`

// TestAPIErrors checks that bad requests get Azure's error envelope with the
// right status, code and target, and change nothing.
func TestAPIErrors(t *testing.T) {
	s := startServer(t)
	tok := s.token()
	c := s.client()
	create(t, c, "running1", "Standard_DS1_v2")

	cases := []struct {
		name, token, method, path, body string
		status                          int
		code, target, msgHas            string
	}{
		{"no token", "", "GET", wsPath + "/computes" + apiV, "", 401, "AuthenticationFailed", "", "Authorization"},
		{"bad token", "chub_nope", "GET", wsPath + "/computes" + apiV, "", 401, "InvalidAuthenticationToken", "", "invalid"},
		{"no api-version", tok, "GET", wsPath + "/computes", "", 400, "MissingApiVersionParameter", "api-version", "api-version"},
		{"future api-version", tok, "GET", wsPath + "/computes?api-version=2031-01-01", "", 400, "InvalidApiVersionParameter", "api-version", "2031-01-01"},
		{"old preview api-version accepted", tok, "GET", wsPath + "/computes/running1?api-version=2018-03-01-preview", "", 200, "", "", ""},
		{"missing compute", tok, "GET", wsPath + "/computes/nosuch" + apiV, "", 404, "ResourceNotFound", "computeName", "nosuch"},
		{"missing workspace", tok, "GET", strings.Replace(wsPath, "/default", "/nows", 2) + "/computes" + apiV, "", 404, "ResourceNotFound", "workspaceName", "nows"},
		{"malformed JSON", tok, "PUT", wsPath + "/computes/badjson" + apiV, `{"properties":`, 400, "InvalidRequestContent", "", "not valid JSON"},
		{"wrong type", tok, "PUT", wsPath + "/computes/badtype" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":42}}}`, 400, "InvalidRequestContent", "properties.properties.vmSize", "string"},
		{"unknown enum", tok, "PUT", wsPath + "/computes/badenum" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS1_v2","sshSettings":{"sshPublicAccess":"Sometimes"}}}}`, 400, "InvalidEnumValue", "properties.properties.sshSettings.sshPublicAccess", "Sometimes"},
		{"ssh without key", tok, "PUT", wsPath + "/computes/nokey" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS1_v2","sshSettings":{"sshPublicAccess":"Enabled"}}}}`, 400, "MissingSshPublicKey", "properties.properties.sshSettings.adminPublicKey", "adminPublicKey"},
		{"idle time too short", tok, "PUT", wsPath + "/computes/idle" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS1_v2","idleTimeBeforeShutdown":"PT5M"}}}`, 400, "InvalidIdleTime", "properties.properties.idleTimeBeforeShutdown", "15 minutes"},
		{"unknown size", tok, "PUT", wsPath + "/computes/nosize" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_Huge"}}}`, 400, "InvalidVmSize", "properties.properties.vmSize", "Standard_Huge"},
		{"unknown image", tok, "PUT", wsPath + "/computes/noimage" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS1_v2","image":"nosuch"}}}`, 400, "ImageNotFound", "properties.properties.image", "chub image import"},
		{"not an instance", tok, "PUT", wsPath + "/computes/aks1" + apiV, `{"properties":{"computeType":"AKS"}}`, 400, "UnsupportedComputeType", "properties.computeType", "AKS"},
		{"name too short", tok, "PUT", wsPath + "/computes/ab" + apiV, ds1, 400, "InvalidComputeName", "name", "3 to 24"},
		{"name ends with digits", tok, "PUT", wsPath + "/computes/abc-12" + apiV, ds1, 400, "InvalidComputeName", "name", "hyphen followed by digits"},
		{"name starts with digit", tok, "PUT", wsPath + "/computes/1abc" + apiV, ds1, 400, "InvalidComputeName", "name", "start with a letter"},
		{"reserved name", tok, "PUT", wsPath + "/computes/amlcompute" + apiV, ds1, 400, "InvalidComputeName", "name", "reserved"},
		{"vmSize change refused", tok, "PUT", wsPath + "/computes/running1" + apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS2_v2"}}}`, 400, "VmSizeImmutable", "properties.properties.vmSize", "cannot be changed"},
		{"start while running", tok, "POST", wsPath + "/computes/running1/start" + apiV, "", 409, "InvalidComputeState", "name", "Running"},
		{"restart of missing", tok, "POST", wsPath + "/computes/nosuch/restart" + apiV, "", 404, "ResourceNotFound", "computeName", "nosuch"},
		{"delete without action", tok, "DELETE", wsPath + "/computes/running1" + apiV, "", 400, "MissingUnderlyingResourceAction", "underlyingResourceAction", "Delete"},
		{"delete with Detach", tok, "DELETE", wsPath + "/computes/running1" + apiV + "&underlyingResourceAction=Detach", "", 400, "DetachNotSupported", "underlyingResourceAction", "not supported for a compute instance"},
		{"delete missing", tok, "DELETE", wsPath + "/computes/nosuch" + apiV + "&underlyingResourceAction=Delete", "", 204, "", "", ""},
		{"workspace with computes", tok, "DELETE", wsPath + apiV, "", 409, "WorkspaceNotEmpty", "workspaceName", "delete them first"},
		{"bad workspace name", tok, "PUT", strings.Replace(wsPath, "/default", "/a", 2) + apiV, `{}`, 400, "InvalidWorkspaceName", "workspaceName", "3 to 33"},
		{"vm sizes of another region", tok, "GET", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.MachineLearningServices/locations/westeurope/vmSizes" + apiV, "", 404, "ResourceNotFound", "location", "westeurope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, tc.token, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status = %d; want %d (body %v)", r.status, tc.status, r.body)
			}
			if tc.code == "" {
				return
			}
			if got := r.errorField("code"); got != tc.code {
				t.Errorf("code = %q; want %q (%v)", got, tc.code, r.body)
			}
			if got := r.errorField("target"); got != tc.target {
				t.Errorf("target = %q; want %q", got, tc.target)
			}
			if got := r.errorField("message"); !strings.Contains(got, tc.msgHas) {
				t.Errorf("message %q does not mention %q", got, tc.msgHas)
			}
		})
	}
	// Nothing the refused requests asked for exists.
	cs, err := c.ListComputes(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Name != "running1" || cs[0].Properties.Properties.VMSize != "Standard_DS1_v2" {
		t.Fatalf("after refused requests the workspace holds %d computes (%v); want only running1 unchanged", len(cs), cs)
	}
}

// TestOperationsAndPaging checks the long-running-operation headers, one
// operation at a time, delete winning, name uniqueness across workspaces,
// and list paging.
func TestOperationsAndPaging(t *testing.T) {
	s := startServer(t, "--page-size", "2")
	tok := s.token()
	c := s.client()

	r := call(t, s, tok, "PUT", wsPath+"/computes/lro1"+apiV, ds1)
	if r.status != 201 {
		t.Fatalf("create status = %d; want 201 (%v)", r.status, r.body)
	}
	async := r.header.Get("Azure-AsyncOperation")
	if !strings.Contains(async, "/computeOperationsStatus/") || !strings.Contains(async, "api-version=") {
		t.Fatalf("Azure-AsyncOperation = %q", async)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After on create")
	}
	props := r.body["properties"].(map[string]any)
	if props["provisioningState"] != "Creating" {
		t.Errorf("provisioningState = %v; want Creating", props["provisioningState"])
	}
	op, err := c.Operation(ctx(t), async)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx(t), op, "", "lro1", nil); err != nil {
		t.Fatal(err)
	}
	st := call(t, s, tok, "GET", strings.TrimPrefix(async, "https://"+s.addr), "")
	if st.body["status"] != "Succeeded" {
		t.Fatalf("operation status = %v; want Succeeded", st.body)
	}

	// A second operation while one runs is refused with the SDK's message.
	r = call(t, s, tok, "POST", wsPath+"/computes/lro1/stop"+apiV, "")
	if r.status != 202 || r.header.Get("Location") == "" || r.header.Get("Azure-AsyncOperation") == "" {
		t.Fatalf("stop: status %d, headers %v", r.status, r.header)
	}
	r2 := call(t, s, tok, "POST", wsPath+"/computes/lro1/stop"+apiV, "")
	if r2.status == 409 {
		if !strings.Contains(r2.errorField("message"), "There is already an active operation submitted") {
			t.Fatalf("second stop message = %q", r2.errorField("message"))
		}
	} else if r2.status != 409 {
		// The stop may already be done on a fast machine; then stop of a stopped instance is a 409 too.
		t.Fatalf("second stop status = %d; want 409", r2.status)
	}
	// Delete wins over the stop in flight.
	del := call(t, s, tok, "DELETE", wsPath+"/computes/lro1"+apiV+"&underlyingResourceAction=Delete", "")
	if del.status != 202 {
		t.Fatalf("delete status = %d", del.status)
	}
	dop, err := c.Operation(ctx(t), del.header.Get("Azure-AsyncOperation"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx(t), dop, "", "", nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if call(t, s, tok, "GET", wsPath+"/computes/lro1"+apiV, "").status != 404 {
		t.Fatal("compute still there after delete")
	}

	// Names are unique across the region, not only the workspace.
	other := strings.Replace(wsPath, "/workspaces/default", "/workspaces/other-ws", 1)
	if r := call(t, s, tok, "PUT", other+apiV, `{"location":"local"}`); r.status != 201 {
		t.Fatalf("create workspace: %d %v", r.status, r.body)
	}
	for _, n := range []string{"pa", "pb", "pc"} {
		if r := call(t, s, tok, "PUT", wsPath+"/computes/page"+n+apiV, ds1); r.status != 201 {
			t.Fatalf("create page%s: %d %v", n, r.status, r.body)
		}
	}
	dup := call(t, s, tok, "PUT", other+"/computes/PAGEPA"+apiV, ds1)
	if dup.status != 409 || dup.errorField("code") != "ComputeNameNotAvailable" {
		t.Fatalf("same name in another workspace: %d %v; want 409 ComputeNameNotAvailable", dup.status, dup.body)
	}
	chk := call(t, s, tok, "POST", other+"/checkComputeNameAvailability"+apiV, `{"Name":"pagepa","Type":"ComputeInstance"}`)
	if chk.body["nameAvailable"] != false || chk.body["reason"] != "AlreadyExists" {
		t.Fatalf("name check = %v", chk.body)
	}
	page1 := call(t, s, tok, "GET", wsPath+"/computes"+apiV, "")
	if n := len(page1.body["value"].([]any)); n != 2 {
		t.Fatalf("first page has %d computes; want 2", n)
	}
	next, _ := page1.body["nextLink"].(string)
	if !strings.Contains(next, "$skip=2") && !strings.Contains(next, "%24skip=2") {
		t.Fatalf("nextLink = %q", next)
	}
	page2 := call(t, s, tok, "GET", strings.TrimPrefix(next, "https://"+s.addr), "")
	if n := len(page2.body["value"].([]any)); n != 1 || page2.body["nextLink"] != nil {
		t.Fatalf("second page: %d computes, nextLink %v; want 1 and none", n, page2.body["nextLink"])
	}
	all, err := c.ListComputes(ctx(t), "")
	if err != nil || len(all) != 3 {
		t.Fatalf("client list: %d, %v; want 3", len(all), err)
	}
	for _, ci := range all {
		waitFor(t, time.Minute, ci.Name+" running", func() bool { return state(t, c, ci.Name) == chub.StateRunning })
	}
}
