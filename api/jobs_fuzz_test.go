package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// FuzzJobBody throws arbitrary bodies at the job decoder and validator:
// none panics, every refusal is a *chub.Error of kind Invalid with a code
// and a message, and every accepted body gives a job that can run: a
// command, a compute of the workspace, bindings that expand.
func FuzzJobBody(f *testing.F) {
	ws := chub.WorkspaceScope{Subscription: fuzzSub, ResourceGroup: "default", Workspace: "default"}
	for _, s := range []string{
		jobBody("ci1", nil),
		jobBody("ci1", map[string]any{"command": "python t.py ${{inputs.lr}} ${{outputs.m}}",
			"inputs":  map[string]any{"lr": map[string]any{"jobInputType": "literal", "value": "1"}},
			"outputs": map[string]any{"m": map[string]any{"jobOutputType": "uri_folder", "mode": "Upload"}},
			"limits":  map[string]any{"jobLimitsType": "Command", "timeout": "PT1H"}, "codeId": "azureml:c:1",
			"environmentId": ws.ResourceID() + "/environments/e/versions/2", "resources": map[string]any{"instanceCount": 1},
			"services": map[string]any{"Studio": nil}, "tags": map[string]any{"a": "b"}}),
		`{"properties":{"jobType":"Sweep"}}`,
		`{"properties":{"jobType":"Command","command":"x","computeId":"azureml:ci1","COMMAND":"y"}}`,
		`{"properties":{"jobType":"Command","command":"x","computeId":"azureml:ci1","inputs":{"a":null}}}`,
		`{"properties":null}`, `null`, `[]`, `{"properties":{"limits":{"timeout":5}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseJobBody(body, ws)
		if err != nil {
			var e *chub.Error
			if !errors.As(err, &e) || e.Kind != chub.KindInvalid || e.Code == "" || e.Message == "" {
				t.Fatalf("parseJobBody(%q): %#v; want a 400 chub error with a code and a message", body, err)
			}
			return
		}
		s := req.spec
		if strings.TrimSpace(s.Command) == "" || !strings.HasPrefix(s.ComputeID, ws.ResourceID()+"/computes/") || s.JobType != "Command" || s.ExperimentName == "" {
			t.Fatalf("parseJobBody(%q) accepted %+v", body, s)
		}
		if s.Timeout < 0 || s.Timeout > maxJobTimeout {
			t.Fatalf("parseJobBody(%q): timeout %v", body, s.Timeout)
		}
		if _, err := s.ExpandCommand(func(n string) string { return "/o/" + n }); err != nil {
			t.Fatalf("parseJobBody(%q) accepted a command that does not expand: %v", body, err)
		}
		for _, id := range []string{s.CodeID, s.EnvironmentID} {
			if id != "" && !strings.HasPrefix(id, ws.ResourceID()+"/") {
				t.Fatalf("parseJobBody(%q): reference %s outside the workspace", body, id)
			}
		}
	})
}

// jobFuzzRoutes are the job, asset and blob requests FuzzJobAPI sends;
// {name} stands for the fuzzed name (path-escaped).
var jobFuzzRoutes = []struct{ method, path string }{
	{"PUT", "/jobs/{name}"},
	{"GET", "/jobs/{name}"},
	{"DELETE", "/jobs/{name}"},
	{"POST", "/jobs/{name}/cancel"},
	{"GET", "/jobs/{name}/logs"},
	{"GET", "/jobs/{name}/outputs"},
	{"GET", "/jobs"},
	{"PUT", "/codes/{name}/versions/1"},
	{"PUT", "/environments/{name}/versions/{name}"},
	{"GET", "/codes/{name}/versions"},
	{"GET", "/environments"},
	{"DELETE", "/codes/{name}/versions/1"},
	{"POST", "/codes/{name}/versions/1/startPendingUpload"},
	{"PUT", "blob"},
}

// FuzzJobAPI sends fuzzed bodies, names and queries to the job, asset
// and blob endpoints of the real API on a real store, as the owner of an
// instance and as a reader: never a 5xx, every error Azure's envelope
// with a code.
func FuzzJobAPI(f *testing.F) {
	seeds := []struct {
		route       uint8
		reader      bool
		name, query string
		body        string
	}{
		{0, false, "j1", "", jobBody("ci1", map[string]any{"command": "echo ${{inputs.a}}", "inputs": map[string]any{"a": map[string]any{"jobInputType": "literal", "value": "1"}}})},
		{0, false, "j1", "", jobBody("ci1", map[string]any{"codeId": "azureml:/subscriptions/" + fuzzSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default/codes/c/versions/1"})},
		{0, true, "j2", "", jobBody("ci1", nil)},
		{1, false, "j1", "", ""},
		{2, false, "j1", "", ""},
		{3, false, "j1", "", ""},
		{4, false, "j1", "stream=stdout&offset=3&follow=false", ""},
		{5, false, "j1", "name=model", ""},
		{6, false, "", "$skip=1&listViewType=All&tag=a=b&compute=ci1&jobType=Command", ""},
		{7, false, "c", "", `{"properties":{"codeUri":"https://chub.example:8443/chub/v1/blobs/00000000-0000-4000-8000-000000000000"}}`},
		{8, false, "e", "", `{"properties":{"image":"host","osType":"Linux"}}`},
		{9, false, "c", "listViewType=ArchivedOnly&$top=1", ""},
		{10, false, "", "$skip=x", ""},
		{11, false, "c", "", ""},
		{12, false, "c", "", `{"pendingUploadType":"TemporaryBlobReference"}`},
		{13, false, "00000000-0000-4000-8000-000000000000", "sig=abc", "not a tarball"},
	}
	for _, s := range seeds {
		f.Add(s.route, s.reader, s.name, s.query, []byte(s.body))
	}
	fx := newJobsFixture(f)
	fx.mkCompute(f, fx.adminTok, "ci1", "")
	f.Fuzz(func(t *testing.T, route uint8, reader bool, name, query string, body []byte) {
		rt := jobFuzzRoutes[int(route)%len(jobFuzzRoutes)]
		esc := url.PathEscape(name)
		var path string
		if rt.path == "blob" {
			path = "/chub/v1/blobs/" + esc + "?" + query
		} else {
			path = fx.wsPath + strings.ReplaceAll(rt.path, "{name}", esc) + "?" + apiV + "&" + query
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return
		}
		if strings.HasSuffix(rt.path, "/logs") && strings.Contains(strings.ToLower(query), "follow") {
			return // a follow waits for the job's end, which never comes here
		}
		tok := fx.adminTok
		if reader {
			tok = fx.readerTok
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := httptest.NewRequest(rt.method, path, bytes.NewReader(body)).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		fx.srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var e envelope
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: %d without an error envelope: %s", rt.method, path, w.Code, w.Body)
			}
		}
	})
}
