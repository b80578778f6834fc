package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

func TestJobRefusals(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	fx.mkCompute(t, fx.bobTok, "bobci", "")
	other := "/subscriptions/" + fuzzSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/other/computes/ci1"
	cases := []struct {
		name, tok, job, body string
		status               int
		code, target         string
	}{
		{"bad name", fx.adminTok, "-bad", jobBody("ci1", nil), 400, "InvalidJobName", "id"},
		{"name too long", fx.adminTok, strings.Repeat("a", 256), jobBody("ci1", nil), 400, "InvalidJobName", "id"},
		{"empty body", fx.adminTok, "j", "", 400, "InvalidRequestContent", ""},
		{"not json", fx.adminTok, "j", `{"properties":`, 400, "InvalidRequestContent", ""},
		{"array", fx.adminTok, "j", `[]`, 400, "InvalidRequestContent", ""},
		{"no properties", fx.adminTok, "j", `{}`, 400, "InvalidRequestContent", "properties"},
		{"unknown top-level field", fx.adminTok, "j", `{"properties":{"jobType":"Command","command":"x","computeId":"azureml:ci1"},"location":"x"}`, 400, "UnknownProperty", "location"},
		{"unknown property", fx.adminTok, "j", jobBody("ci1", map[string]any{"commandLine": "x"}), 400, "UnknownProperty", "properties.commandLine"},
		{"missing command", fx.adminTok, "j", jobBody("ci1", map[string]any{"command": nil}), 400, "MissingCommand", "properties.command"},
		{"blank command", fx.adminTok, "j", jobBody("ci1", map[string]any{"command": "  "}), 400, "MissingCommand", "properties.command"},
		{"command not a string", fx.adminTok, "j", jobBody("ci1", map[string]any{"command": 5}), 400, "InvalidRequestContent", "properties.command"},
		{"missing jobType", fx.adminTok, "j", jobBody("ci1", map[string]any{"jobType": nil}), 400, "MissingJobType", "properties.jobType"},
		{"pipeline", fx.adminTok, "j", jobBody("ci1", map[string]any{"jobType": "Pipeline"}), 400, "UnsupportedJobType", "properties.jobType"},
		{"sweep", fx.adminTok, "j", jobBody("ci1", map[string]any{"jobType": "Sweep"}), 400, "UnsupportedJobType", "properties.jobType"},
		{"automl", fx.adminTok, "j", jobBody("ci1", map[string]any{"jobType": "AutoML"}), 400, "UnsupportedJobType", "properties.jobType"},
		{"spark", fx.adminTok, "j", jobBody("ci1", map[string]any{"jobType": "Spark"}), 400, "UnsupportedJobType", "properties.jobType"},
		{"made-up type", fx.adminTok, "j", jobBody("ci1", map[string]any{"jobType": "Batch"}), 400, "InvalidJobType", "properties.jobType"},
		{"distribution", fx.adminTok, "j", jobBody("ci1", map[string]any{"distribution": map[string]any{"distributionType": "PyTorch"}}), 400, "UnsupportedProperty", "properties.distribution"},
		{"identity", fx.adminTok, "j", jobBody("ci1", map[string]any{"identity": map[string]any{"identityType": "Managed"}}), 400, "UnsupportedProperty", "properties.identity"},
		{"queueSettings", fx.adminTok, "j", jobBody("ci1", map[string]any{"queueSettings": map[string]any{"jobTier": "Spot"}}), 400, "UnsupportedProperty", "properties.queueSettings"},
		{"resources 2 instances", fx.adminTok, "j", jobBody("ci1", map[string]any{"resources": map[string]any{"instanceCount": 2}}), 400, "UnsupportedProperty", "properties.resources.instanceCount"},
		{"resources instanceType", fx.adminTok, "j", jobBody("ci1", map[string]any{"resources": map[string]any{"instanceType": "Standard_NC6"}}), 400, "UnsupportedProperty", "properties.resources.instanceType"},
		{"resources shmSize", fx.adminTok, "j", jobBody("ci1", map[string]any{"resources": map[string]any{"shmSize": "8g"}}), 400, "UnsupportedProperty", "properties.resources.shmSize"},
		{"resources unknown", fx.adminTok, "j", jobBody("ci1", map[string]any{"resources": map[string]any{"gpus": 1}}), 400, "UnknownProperty", "properties.resources.gpus"},
		{"user service", fx.adminTok, "j", jobBody("ci1", map[string]any{"services": map[string]any{"ssh": map[string]any{"jobServiceType": "SSH"}}}), 400, "UnsupportedProperty", "properties.services.ssh"},
		{"undeclared input", fx.adminTok, "j", jobBody("ci1", map[string]any{"command": "echo ${{inputs.lr}}"}), 400, "JobCommandBindingNotFound", "properties.command"},
		{"undeclared output", fx.adminTok, "j", jobBody("ci1", map[string]any{"command": "echo > ${{outputs.model}}/x"}), 400, "JobCommandBindingNotFound", "properties.command"},
		{"uri_folder input", fx.adminTok, "j", jobBody("ci1", map[string]any{"inputs": map[string]any{"data": map[string]any{"jobInputType": "uri_folder", "uri": "azureml://x"}}}), 400, "UnsupportedJobInputType", "properties.inputs.data.jobInputType"},
		{"literal without value", fx.adminTok, "j", jobBody("ci1", map[string]any{"inputs": map[string]any{"lr": map[string]any{"jobInputType": "literal"}}}), 400, "InvalidJobInput", "properties.inputs.lr.value"},
		{"bad input name", fx.adminTok, "j", jobBody("ci1", map[string]any{"inputs": map[string]any{"l-r": map[string]any{"jobInputType": "literal", "value": "1"}}}), 400, "InvalidJobInput", "properties.inputs.l-r"},
		{"mlflow output", fx.adminTok, "j", jobBody("ci1", map[string]any{"outputs": map[string]any{"m": map[string]any{"jobOutputType": "mlflow_model"}}}), 400, "UnsupportedJobOutputType", "properties.outputs.m.jobOutputType"},
		{"output uri", fx.adminTok, "j", jobBody("ci1", map[string]any{"outputs": map[string]any{"m": map[string]any{"jobOutputType": "uri_folder", "uri": "azureml://datastores/x"}}}), 400, "UnsupportedProperty", "properties.outputs.m.uri"},
		{"output mode direct", fx.adminTok, "j", jobBody("ci1", map[string]any{"outputs": map[string]any{"m": map[string]any{"jobOutputType": "uri_folder", "mode": "Direct"}}}), 400, "UnsupportedProperty", "properties.outputs.m.mode"},
		{"bad timeout", fx.adminTok, "j", jobBody("ci1", map[string]any{"limits": map[string]any{"jobLimitsType": "Command", "timeout": "1h"}}), 400, "InvalidJobTimeout", "properties.limits.timeout"},
		{"zero timeout", fx.adminTok, "j", jobBody("ci1", map[string]any{"limits": map[string]any{"timeout": "PT0S"}}), 400, "InvalidJobTimeout", "properties.limits.timeout"},
		{"timeout over 30 days", fx.adminTok, "j", jobBody("ci1", map[string]any{"limits": map[string]any{"timeout": "P31D"}}), 400, "InvalidJobTimeout", "properties.limits.timeout"},
		{"sweep limits", fx.adminTok, "j", jobBody("ci1", map[string]any{"limits": map[string]any{"jobLimitsType": "Sweep"}}), 400, "InvalidJobLimits", "properties.limits.jobLimitsType"},
		{"env var with =", fx.adminTok, "j", jobBody("ci1", map[string]any{"environmentVariables": map[string]any{"A=B": "c"}}), 400, "InvalidEnvironmentVariables", "properties.environmentVariables"},
		{"too many tags", fx.adminTok, "j", jobBody("ci1", map[string]any{"tags": manyTags(51)}), 400, "InvalidTag", "properties.tags"},
		{"long description", fx.adminTok, "j", jobBody("ci1", map[string]any{"description": strings.Repeat("d", 5001)}), 400, "InvalidDescription", "properties.description"},
		{"missing compute", fx.adminTok, "j", jobBody("ci1", map[string]any{"computeId": nil}), 400, "MissingComputeId", "properties.computeId"},
		{"unknown compute", fx.adminTok, "j", jobBody("nope", nil), 400, "ComputeNotFound", "properties.computeId"},
		{"compute of another workspace", fx.adminTok, "j", jobBody("ci1", map[string]any{"computeId": other}), 400, "ComputeNotFound", "properties.computeId"},
		{"not an ARM id", fx.adminTok, "j", jobBody("ci1", map[string]any{"computeId": "/subscriptions/x/computes/ci1"}), 400, "InvalidResourceReference", "properties.computeId"},
		{"registry environment", fx.adminTok, "j", jobBody("ci1", map[string]any{"environmentId": "azureml://registries/azureml/environments/sklearn/versions/1"}), 400, "UnsupportedProperty", "properties.environmentId"},
		{"unknown code", fx.adminTok, "j", jobBody("ci1", map[string]any{"codeId": "azureml:c1:1"}), 400, "CodeNotFound", "properties.codeId"},
		{"unknown environment", fx.adminTok, "j", jobBody("ci1", map[string]any{"environmentId": "azureml:e1:1"}), 400, "EnvironmentNotFound", "properties.environmentId"},
		{"code without version", fx.adminTok, "j", jobBody("ci1", map[string]any{"codeId": "azureml:c1"}), 400, "InvalidResourceReference", "properties.codeId"},
		{"new job archived", fx.adminTok, "j", jobBody("ci1", map[string]any{"isArchived": true}), 400, "InvalidJobArchive", "properties.isArchived"},
		{"not the instance's user", fx.adminTok, "j", jobBody("bobci", nil), 403, "AuthorizationFailed", "properties.computeId"},
		{"reader cannot submit", fx.readerTok, "j", jobBody("ci1", nil), 403, "AuthorizationFailed", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := fx.do(t, tc.tok, "PUT", fx.arm("/jobs/"+url.PathEscape(tc.job)), tc.body)
			if w.Code != tc.status {
				t.Fatalf("status %d; want %d: %s", w.Code, tc.status, w.Body)
			}
			e := errOf(t, w)
			if e.Code != tc.code || (tc.target != "" && e.Target != tc.target) {
				t.Errorf("error %s (target %q): %s; want %s (target %q)", e.Code, e.Target, e.Message, tc.code, tc.target)
			}
			if e.Message == "" {
				t.Error("error without a message")
			}
		})
	}
	// Nothing was stored by any refusal.
	js, err := fx.store.ListJobs(context.Background(), chub.JobFilter{View: chub.JobViewAll})
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 0 {
		t.Errorf("%d jobs stored after refusals; want 0", len(js))
	}
}

func manyTags(n int) map[string]any {
	m := map[string]any{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("t%d", i)] = "v"
	}
	return m
}

func TestJobNotOwnerMessage(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.bobTok, "bobci", "")
	w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), jobBody("bobci", nil))
	e := errOf(t, w)
	if !strings.Contains(e.Message, "bob") || !strings.Contains(e.Message, "only for its user") {
		t.Errorf("message %q; want it to say the instance is bob's and runs jobs only for its user", e.Message)
	}
	// The refusal is audited, at the job.
	es, err := fx.store.ListAudit(context.Background(), chub.AuditFilter{Principal: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range es {
		found = found || a.Status == 403 && a.Action == chub.ActionJobWrite && strings.HasSuffix(a.Resource, "/jobs/j1")
	}
	if !found {
		t.Errorf("no audit entry for the refused submit among %+v", es)
	}
}

func TestJobCreateGetUpdate(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	body := jobBody("ci1", map[string]any{
		"command":              "python train.py --lr ${{inputs.lr}} --out ${{outputs.model}}",
		"inputs":               map[string]any{"lr": map[string]any{"jobInputType": "literal", "value": "0.1"}},
		"outputs":              map[string]any{"model": map[string]any{"jobOutputType": "uri_folder"}},
		"limits":               map[string]any{"jobLimitsType": "Command", "timeout": "PT1H30M"},
		"environmentVariables": map[string]any{"K": "V"},
		"tags":                 map[string]any{"team": "a"},
		"displayName":          "first", "description": "d",
		"distribution": nil, "identity": nil,
		"resources": map[string]any{"instanceCount": 1},
		"services":  map[string]any{"Studio": map[string]any{"jobServiceType": "Studio"}, "Tracking": nil},
	})
	w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), body)
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s; want 201", w.Code, w.Body)
	}
	j := decodeAs[jobOut](t, w)
	wantCompute := fx.scope.ResourceID() + "/computes/ci1"
	for _, c := range []struct{ name, got, want string }{
		{"id", j.ID, fx.scope.ResourceID() + "/jobs/j1"},
		{"type", j.Type, "Microsoft.MachineLearningServices/workspaces/jobs"},
		{"jobType", j.Properties.JobType, "Command"},
		{"status", j.Properties.Status, "NotStarted"},
		{"computeId", j.Properties.ComputeID, wantCompute},
		{"experimentName", j.Properties.ExperimentNm, "Default"},
		{"timeout", deref(j.Properties.Limits["timeout"]), "PT1H30M"},
		{"output mode", fmt.Sprint(j.Properties.Outputs["model"]["mode"]), "ReadWriteMount"},
		{"input value", fmt.Sprint(j.Properties.Inputs["lr"]["value"]), "0.1"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	studio := j.Properties.Services["Studio"]
	if studio == nil || (*studio)["endpoint"] != fx.external+"/#/jobs/"+url.PathEscape(fx.scope.ResourceID())+"/j1" {
		t.Errorf("services.Studio = %v; want the job's Studio page under %s", studio, fx.external)
	}
	if j.Properties.QueuePosition == nil || *j.Properties.QueuePosition != 1 {
		t.Errorf("queuePosition = %v; want 1", j.Properties.QueuePosition)
	}
	stored, err := fx.store.GetJob(context.Background(), fx.scope, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if stored.CreatedBy.UserID != fx.admin.ID || stored.Spec.Timeout != 90*time.Minute || stored.Spec.EnvironmentVariables["K"] != "V" {
		t.Errorf("stored job %+v; want admin's, timeout 1h30m, K=V", stored)
	}

	// GET answers the same job; the name is case-insensitive.
	g := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/J1"), "")
	if g.Code != 200 || decodeAs[jobOut](t, g).Properties.Command != j.Properties.Command {
		t.Errorf("GET: %d %s", g.Code, g.Body)
	}
	if w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/nope"), ""); w.Code != 404 {
		t.Errorf("GET unknown job: %d; want 404", w.Code)
	}

	// An update changes the mutable fields: 200.
	upd := strings.Replace(body, `"team":"a"`, `"team":"b"`, 1)
	w = fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), upd)
	if w.Code != 200 || decodeAs[jobOut](t, w).Properties.Tags["team"] != "b" {
		t.Fatalf("update tags: %d %s; want 200 with team=b", w.Code, w.Body)
	}
	// The same compute in its ARM-id form is no change.
	armForm := strings.Replace(upd, `"azureml:ci1"`, `"`+strings.ToUpper(wantCompute[:14])+wantCompute[14:]+`"`, 1)
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), armForm); w.Code != 200 {
		t.Errorf("update with the compute's ARM id: %d %s; want 200", w.Code, w.Body)
	}
	// The body a GET gave can be sent back.
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), g.Body.String()); w.Code != 200 {
		t.Errorf("PUT of the GET body: %d %s; want 200", w.Code, w.Body)
	}
	// What the SDK sends back after a get: its defaults filled in
	// (resources.shmSize "2g"), read-only fields left out.
	var sdk struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(g.Body.Bytes(), &sdk); err != nil {
		t.Fatal(err)
	}
	props := sdk.Properties
	props["resources"] = map[string]any{"instanceCount": 1, "shmSize": "2g"}
	props["tags"] = map[string]any{"team": "c"}
	delete(props, "status")
	delete(props, "parameters")
	rt, _ := json.Marshal(map[string]any{"properties": props})
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), string(rt)); w.Code != 200 || decodeAs[jobOut](t, w).Properties.Tags["team"] != "c" {
		t.Errorf("SDK round trip: %d %s; want 200 with team=c", w.Code, w.Body)
	}
	for _, c := range []struct{ field, from, to string }{
		{"command", `"python train.py`, `"python other.py`},
		{"limits.timeout", `"PT1H30M"`, `"PT2H"`},
		{"environmentVariables", `"K":"V"`, `"K":"W"`},
		{"inputs", `"value":"0.1"`, `"value":"0.2"`},
	} {
		changed := strings.Replace(upd, c.from, c.to, 1)
		w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), changed)
		if e := errOf(t, w); w.Code != 400 || e.Code != "JobPropertyImmutable" || e.Target != "properties."+c.field {
			t.Errorf("change %s: %d %s %s; want 400 JobPropertyImmutable at properties.%s", c.field, w.Code, e.Code, e.Target, c.field)
		}
	}
	// Archiving a job that has not ended is refused.
	arch := strings.Replace(upd, `"command"`, `"isArchived":true,"command"`, 1)
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), arch); w.Code != 409 {
		t.Errorf("archive an active job by PUT: %d %s; want 409", w.Code, w.Body)
	}
	// A reader cannot update.
	if w := fx.do(t, fx.readerTok, "PUT", fx.arm("/jobs/j1"), upd); w.Code != 403 {
		t.Errorf("reader PUT: %d; want 403", w.Code)
	}
	// The submit was audited with the job's resource id.
	es, err := fx.store.ListAudit(context.Background(), chub.AuditFilter{Principal: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range es {
		found = found || a.Status == 201 && a.Action == chub.ActionJobWrite && a.Resource == stored.ResourceID()
	}
	if !found {
		t.Errorf("no audit entry of the submit at %s among %+v", stored.ResourceID(), es)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestJobListPagingViewsTags(t *testing.T) {
	fx := newJobsFixture(t)
	fx.srv.cfg.PageSize = 2
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	fx.mkCompute(t, fx.adminTok, "ci2", "")
	for i := 1; i <= 5; i++ {
		compute := "ci1"
		if i == 5 {
			compute = "ci2"
		}
		tags := map[string]any{"n": fmt.Sprint(i)}
		if i%2 == 0 {
			tags["even"] = "yes"
		}
		if w := fx.do(t, fx.adminTok, "PUT", fx.arm(fmt.Sprintf("/jobs/j%d", i)), jobBody(compute, map[string]any{"tags": tags})); w.Code != 201 {
			t.Fatalf("create j%d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := fx.do(t, fx.adminTok, "DELETE", fx.arm("/jobs/j3"), ""); w.Code != 202 {
		t.Fatalf("delete j3: %d %s", w.Code, w.Body)
	}
	list := func(query ...string) ([]string, string) {
		t.Helper()
		w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs", query...), "")
		if w.Code != 200 {
			t.Fatalf("list %v: %d %s", query, w.Code, w.Body)
		}
		var l struct {
			Value    []jobOut `json:"value"`
			NextLink string   `json:"nextLink"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, j := range l.Value {
			names = append(names, j.Name)
		}
		return names, l.NextLink
	}
	// Every page, following nextLink: newest first, archived left out.
	var all []string
	names, next := list()
	all = append(all, names...)
	for next != "" {
		if !strings.HasPrefix(next, fx.external+"/subscriptions/") {
			t.Fatalf("nextLink %q is not under the external URL", next)
		}
		u, _ := url.Parse(next)
		names, next = list(strings.TrimPrefix(u.RawQuery, apiV+"&"))
		all = append(all, names...)
		if len(all) > 10 {
			t.Fatal("paging does not end")
		}
	}
	if got, want := strings.Join(all, ","), "j5,j4,j2,j1"; got != want {
		t.Errorf("active jobs %s; want %s", got, want)
	}
	for _, c := range []struct {
		query []string
		want  string
	}{
		{[]string{"listViewType=ArchivedOnly"}, "j3"},
		{[]string{"listViewType=All", "$skip=2"}, "j3,j2"},
		{[]string{"tag=even"}, "j4,j2"},
		{[]string{"tag=n=1"}, "j1"},
		{[]string{"compute=ci2"}, "j5"},
		{[]string{"jobType=Pipeline"}, ""},
	} {
		names, _ := list(c.query...)
		if got := strings.Join(names, ","); got != c.want {
			t.Errorf("list %v: %s; want %s", c.query, got, c.want)
		}
	}
	for _, q := range []string{"listViewType=Deleted", "$skip=-1"} {
		if w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs", q), ""); w.Code != 400 {
			t.Errorf("list %s: %d; want 400", q, w.Code)
		}
	}
}

func TestJobCancelAndDelete(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	for _, n := range []string{"j1", "j2"} {
		if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/"+n), jobBody("ci1", nil)); w.Code != 201 {
			t.Fatalf("create %s: %d %s", n, w.Code, w.Body)
		}
	}
	if w := fx.do(t, fx.readerTok, "POST", fx.arm("/jobs/j1/cancel"), ""); w.Code != 403 {
		t.Errorf("reader cancel: %d; want 403", w.Code)
	}
	w := fx.do(t, fx.adminTok, "POST", fx.arm("/jobs/j1/cancel"), "")
	if w.Code != 202 {
		t.Fatalf("cancel: %d %s; want 202", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	if want := fx.external + fx.scope.ResourceID() + "/jobs/j1?" + apiV; loc != want {
		t.Errorf("Location %q; want %q", loc, want)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	u, _ := url.Parse(loc)
	g := fx.do(t, fx.readerTok, "GET", u.RequestURI(), "")
	if st := decodeAs[jobOut](t, g).Properties.Status; st != "Canceled" {
		t.Errorf("after cancel the job is %s; want Canceled (a job not yet running ends at once)", st)
	}
	// Canceling an ended job is accepted: nothing to do.
	if w := fx.do(t, fx.adminTok, "POST", fx.arm("/jobs/j1/cancel"), ""); w.Code != 202 {
		t.Errorf("cancel again: %d; want 202", w.Code)
	}
	if w := fx.do(t, fx.adminTok, "POST", fx.arm("/jobs/nope/cancel"), ""); w.Code != 404 {
		t.Errorf("cancel unknown: %d; want 404", w.Code)
	}
	es, err := fx.store.ListAudit(context.Background(), chub.AuditFilter{Principal: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range es {
		found = found || a.Status == 202 && a.Action == chub.ActionJobCancel && strings.HasSuffix(a.Resource, "/jobs/j1")
	}
	if !found {
		t.Errorf("no audit entry of the cancel among %+v", es)
	}

	// DELETE of an active job cancels it, then archives it.
	w = fx.do(t, fx.adminTok, "DELETE", fx.arm("/jobs/j2"), "")
	if w.Code != 202 || !strings.HasSuffix(w.Header().Get("Location"), "/jobs/j2?"+apiV) {
		t.Fatalf("delete: %d Location %q; want 202 with the job's URL", w.Code, w.Header().Get("Location"))
	}
	j := decodeAs[jobOut](t, fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/j2"), ""))
	if !j.Properties.IsArchived || j.Properties.Status != "Canceled" {
		t.Errorf("deleted job: archived %v status %s; want archived and Canceled", j.Properties.IsArchived, j.Properties.Status)
	}
	if w := fx.do(t, fx.adminTok, "DELETE", fx.arm("/jobs/nope"), ""); w.Code != 204 {
		t.Errorf("delete unknown: %d; want 204", w.Code)
	}
	// An ended job may be archived and restored by PUT isArchived.
	restore := jobBody("ci1", map[string]any{"isArchived": false})
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j2"), restore); w.Code != 200 || decodeAs[jobOut](t, w).Properties.IsArchived {
		t.Errorf("restore: %d %s; want 200, not archived", w.Code, w.Body)
	}
}

func TestJobLogsAndOutputsBeforeTheEnd(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), jobBody("ci1", map[string]any{"outputs": map[string]any{"m": map[string]any{"jobOutputType": "uri_folder"}}})); w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	cases := []struct {
		path   string
		query  []string
		status int
		code   string
	}{
		{"/jobs/j1/logs", []string{"stream=std_log", "follow=false"}, 200, ""},
		{"/jobs/j1/logs", []string{"stream=nope"}, 400, "InvalidLogStream"},
		{"/jobs/j1/logs", []string{"offset=-1"}, 400, "InvalidLogOffset"},
		{"/jobs/j1/logs", []string{"follow=maybe"}, 400, "InvalidQueryParameter"},
		{"/jobs/nope/logs", nil, 404, ""},
		{"/jobs/j1/outputs", nil, 409, "JobOutputsNotReady"},
		{"/jobs/j1/outputs", []string{"name=../x"}, 400, "InvalidJobOutput"},
	}
	for _, c := range cases {
		w := fx.do(t, fx.readerTok, "GET", fx.arm(c.path, c.query...), "")
		if w.Code != c.status {
			t.Errorf("GET %s %v: %d %s; want %d", c.path, c.query, w.Code, w.Body, c.status)
			continue
		}
		if c.code != "" {
			if e := errOf(t, w); e.Code != c.code {
				t.Errorf("GET %s %v: %s; want %s", c.path, c.query, e.Code, c.code)
			}
		}
		if c.status == 200 {
			if st := w.Header().Get("X-Chub-Job-Status"); st != "NotStarted" {
				t.Errorf("X-Chub-Job-Status %q; want NotStarted", st)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q; want text/plain; charset=utf-8", ct)
			}
		}
	}
}

func TestComputeJobRunningState(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	fx.mkCompute(t, fx.adminTok, "ci2", "")
	ctx := context.Background()
	for _, n := range []string{"ci1", "ci2"} {
		c, err := fx.store.GetCompute(ctx, fx.scope, n)
		if err != nil {
			t.Fatal(err)
		}
		c.State, c.ActiveOperation = chub.StateRunning, ""
		if err := fx.store.UpdateCompute(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), jobBody("ci1", nil)); w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	state := func(name string) string {
		var c struct {
			Properties struct {
				Properties struct {
					State string `json:"state"`
				} `json:"properties"`
			} `json:"properties"`
		}
		w := fx.do(t, fx.readerTok, "GET", fx.arm("/computes/"+name), "")
		if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		return c.Properties.Properties.State
	}
	if got := state("ci1"); got != "Running" {
		t.Errorf("with a queued job: %s; want Running", got)
	}
	j, err := fx.store.GetJob(ctx, fx.scope, "j1")
	if err != nil {
		t.Fatal(err)
	}
	j.Status = chub.JobRunning
	if err := fx.store.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got := state("ci1"); got != "JobRunning" {
		t.Errorf("with a running job: %s; want JobRunning", got)
	}
	if got := state("ci2"); got != "Running" {
		t.Errorf("the other instance: %s; want Running", got)
	}
	w := fx.do(t, fx.readerTok, "GET", fx.arm("/computes"), "")
	var l struct {
		Value []struct {
			Name       string `json:"name"`
			Properties struct {
				Properties struct {
					State string `json:"state"`
				} `json:"properties"`
			} `json:"properties"`
		} `json:"value"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range l.Value {
		got[c.Name] = c.Properties.Properties.State
	}
	if got["ci1"] != "JobRunning" || got["ci2"] != "Running" {
		t.Errorf("list states %v; want ci1 JobRunning, ci2 Running", got)
	}
}

func TestComputeMaxConcurrentJobs(t *testing.T) {
	fx := newJobsFixture(t)
	// Standard_DS3_v2 has 4 vCPUs.
	for _, c := range []struct {
		extra  string
		status int
	}{
		{`,"maxConcurrentJobs":5`, 400},
		{`,"maxConcurrentJobs":-1`, 400},
		{`,"maxConcurrentJobs":"2"`, 400},
		{`,"maxConcurrentJobs":1.5`, 400},
	} {
		body := `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS3_v2"` + c.extra + `}}}`
		w := fx.do(t, fx.adminTok, "PUT", fx.arm("/computes/ci1"), body)
		if w.Code != c.status {
			t.Errorf("create with %s: %d %s; want %d", c.extra, w.Code, w.Body, c.status)
		}
		if w.Code == 400 && c.extra == `,"maxConcurrentJobs":5` {
			if e := errOf(t, w); e.Code != "InvalidMaxConcurrentJobs" || e.Target != "properties.properties.maxConcurrentJobs" {
				t.Errorf("create with 5: %s at %s; want InvalidMaxConcurrentJobs at properties.properties.maxConcurrentJobs", e.Code, e.Target)
			}
		}
	}
	fx.mkCompute(t, fx.adminTok, "ci1", `,"maxConcurrentJobs":2`)
	get := func() int {
		var c struct {
			Properties struct {
				Properties struct {
					MaxConcurrentJobs int `json:"maxConcurrentJobs"`
				} `json:"properties"`
			} `json:"properties"`
		}
		w := fx.do(t, fx.readerTok, "GET", fx.arm("/computes/ci1"), "")
		if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		return c.Properties.Properties.MaxConcurrentJobs
	}
	if got := get(); got != 2 {
		t.Errorf("after create: %d; want 2", got)
	}
	put := func(extra string) int {
		body := `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS3_v2"` + extra + `}}}`
		return fx.do(t, fx.adminTok, "PUT", fx.arm("/computes/ci1"), body).Code
	}
	for _, c := range []struct {
		extra  string
		status int
		want   int
	}{
		{`,"maxConcurrentJobs":3`, 200, 3},
		{``, 200, 3}, // an update without it keeps it
		{`,"maxConcurrentJobs":9`, 400, 3},
		{`,"maxConcurrentJobs":0`, 200, 0},
		{`,"maxConcurrentJobs":4`, 200, 4},
	} {
		if got := put(c.extra); got != c.status {
			t.Errorf("update %q: %d; want %d", c.extra, got, c.status)
		}
		if got := get(); got != c.want {
			t.Errorf("after update %q: %d; want %d", c.extra, got, c.want)
		}
	}
}

func TestComputeStopCancelJobs(t *testing.T) {
	fx := newJobsFixture(t)
	fx.srv.cfg.Lifecycle.CancelJobs = fx.ctrl.CancelAll
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	ctx := context.Background()
	c, err := fx.store.GetCompute(ctx, fx.scope, "ci1")
	if err != nil {
		t.Fatal(err)
	}
	c.State, c.ActiveOperation = chub.StateRunning, ""
	if err := fx.store.UpdateCompute(ctx, c); err != nil {
		t.Fatal(err)
	}
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), jobBody("ci1", nil)); w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if w := fx.do(t, fx.adminTok, "POST", fx.arm("/computes/ci1/stop", "cancelJobs=perhaps"), ""); w.Code != 400 {
		t.Errorf("stop cancelJobs=perhaps: %d; want 400", w.Code)
	}
	if w := fx.do(t, fx.adminTok, "POST", fx.arm("/computes/ci1/stop", "cancelJobs=true"), ""); w.Code != 202 {
		t.Fatalf("stop cancelJobs=true: %d %s; want 202", w.Code, w.Body)
	}
	j, err := fx.store.GetJob(ctx, fx.scope, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != chub.JobCanceled {
		t.Errorf("after stop with cancelJobs the job is %s; want Canceled", j.Status)
	}
}
