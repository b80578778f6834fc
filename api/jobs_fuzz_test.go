package api

import (
	"errors"
	"strings"
	"testing"

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
