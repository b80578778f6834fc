package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestJobsAuthorization: a job runs on an instance only for its user (a
// Data Scientist, even the admin, is refused on someone else's instance); a
// Reader submits nothing and cancels nothing but reads; canceling is the
// cancel action's (a Data Scientist of the workspace may cancel a
// colleague's job, as in Azure); the audit log records submits and cancels,
// refused ones too.
func TestJobsAuthorization(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	aliceID, _, aliceTok := newUser(t, s, admin, "alice")
	bobID, _, bobTok := newUser(t, s, admin, "bob")
	carolID, _, carolTok := newUser(t, s, admin, "carol")
	for id, role := range map[string]string{aliceID: "AzureML Data Scientist", bobID: "AzureML Data Scientist", carolID: "Reader"} {
		if _, err := admin.AssignRole(ctx(t), id, role, wsID); err != nil {
			t.Fatal(err)
		}
	}
	createFor(t, admin, "alices", aliceID)
	createFor(t, admin, "carols", carolID)
	createFor(t, admin, "admins", "")
	alice, bob, carol, root := newJobAPI(t, s, aliceTok), newJobAPI(t, s, bobTok), newJobAPI(t, s, carolTok), newJobAPI(t, s, s.token())

	refused := []struct {
		who      string
		api      *jobAPI
		job, on  string
		wantCode string
		msgHas   []string // what the message must say
	}{
		{"alice (Data Scientist) on the admin's instance", alice, "alice-on-admins", "admins", "AuthorizationFailed", []string{"only for its user", "admin"}},
		{"the admin on alice's instance", root, "admin-on-alices", "alices", "AuthorizationFailed", []string{"only for its user", "alice"}},
		{"bob (Data Scientist) on alice's instance", bob, "bob-on-alices", "alices", "AuthorizationFailed", []string{"only for its user", "alice", "bob"}},
		{"carol (Reader) on her own instance", carol, "carol-on-carols", "carols", "AuthorizationFailed", []string{chub.ActionJobWrite}},
	}
	for _, r := range refused {
		code, data := r.api.trySubmit(r.job, commandJob(r.on, "echo should-not-run"))
		if code != http.StatusForbidden || decodeError(data).Error.Code != r.wantCode {
			t.Errorf("submit by %s: %d %s; want 403 %s", r.who, code, data, r.wantCode)
		}
		for _, m := range r.msgHas {
			if msg := decodeError(data).Error.Message; !strings.Contains(strings.ToLower(msg), strings.ToLower(m)) {
				t.Errorf("submit by %s refused with %q; want it to say %q", r.who, msg, m)
			}
		}
		if code, _, _ := root.call("GET", "/jobs/"+r.job, "", nil); code != http.StatusNotFound {
			t.Errorf("job refused to %s: GET answers %d; want 404 (never stored)", r.who, code)
		}
	}

	// Alice runs a job on her own instance.
	alice.submit("alice-job", commandJob("alices", "echo alice-running; sleep 60"))
	j := alice.waitStatus("alice-job", chub.JobRunning, 30*time.Second)
	if j.Properties.Status != chub.JobRunning {
		t.Fatalf("alice's job: %s", j)
	}
	// Carol reads it, but cancels nothing.
	if got := carol.get("alice-job"); got.Name != "alice-job" {
		t.Errorf("carol reading alice's job: %s", got)
	}
	if code, _, data := carol.call("POST", "/jobs/alice-job/cancel", "", nil); code != http.StatusForbidden || decodeError(data).Error.Code != "AuthorizationFailed" {
		t.Errorf("carol (Reader) canceling alice's job: %d %s; want 403 AuthorizationFailed", code, data)
	}
	if code, _, data := carol.call("DELETE", "/jobs/alice-job", "", nil); code != http.StatusForbidden {
		t.Errorf("carol (Reader) deleting alice's job: %d %s; want 403", code, data)
	}
	if j := alice.get("alice-job"); j.Properties.Status != chub.JobRunning {
		t.Errorf("alice's job after carol's refused cancel: %s; want Running", j)
	}
	// Bob, a Data Scientist of the workspace, holds the cancel action.
	bob.cancel("alice-job")
	if j := alice.waitEnd("alice-job", 60*time.Second); j.Properties.Status != chub.JobCanceled {
		t.Errorf("alice's job after bob's cancel: %s; want Canceled", j)
	}

	es, err := admin.Audit(ctx(t), "1h", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		who, action, job string
		ok               bool
	}
	for _, w := range []want{
		{"alice", chub.ActionJobWrite, "alice-job", true},
		{"alice", chub.ActionJobWrite, "alice-on-admins", false},
		{"admin", chub.ActionJobWrite, "admin-on-alices", false},
		{"carol", chub.ActionJobWrite, "carol-on-carols", false},
		{"carol", chub.ActionJobCancel, "alice-job", false},
		{"bob", chub.ActionJobCancel, "alice-job", true},
	} {
		found := false
		for _, e := range es {
			if e.PrincipalName == w.who && strings.EqualFold(e.Action, w.action) && strings.HasSuffix(strings.ToLower(e.Resource), "/jobs/"+w.job) && (e.Result == "Succeeded") == w.ok {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the audit log has no entry of %s's %s on job %s (succeeded: %v)", w.who, w.action, w.job, w.ok)
		}
	}
	if t.Failed() {
		for _, e := range es {
			if strings.Contains(e.Resource, "/jobs/") {
				t.Logf("audit: %s %s %s %s", e.PrincipalName, e.Action, e.Resource, e.Result)
			}
		}
	}
}
