package e2e

import (
	"strings"
	"testing"
)

// TestForeignSubscriptionQuota replays the quota attack of issue 8: the
// Owner of an empty foreign subscription sets the total cores to 0, which
// used to stop everyone in the region. Quotas and usages are per
// subscription and region: his change applies to his subscription only,
// he may lower his limits but not raise them (an administrator at / does
// that), and a create counts against its own subscription.
func TestForeignSubscriptionQuota(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	oid, _, otok := newUser(t, s, admin, "olga")
	if _, err := admin.AssignRole(ctx(t), oid, "Owner", "/subscriptions/"+foreignSub); err != nil {
		t.Fatal(err)
	}
	loc := func(sub string) string {
		return "/subscriptions/" + sub + "/providers/Microsoft.MachineLearningServices/locations/local"
	}
	setTotal := func(tok, sub, limit string) apiResult {
		return call(t, s, tok, "POST", loc(sub)+"/updateQuotas"+apiV, `{"value":[{"id":"`+loc(sub)+`/quotas/totalCores","type":"Microsoft.MachineLearningServices/totalCores/quotas","limit":`+limit+`,"unit":"Count"}]}`)
	}
	status := func(r apiResult) string {
		v, _ := r.body["value"].([]any)
		if len(v) != 1 {
			return ""
		}
		st, _ := v[0].(map[string]any)["status"].(string)
		return st
	}
	if r := setTotal(otok, foreignSub, "0"); r.status != 200 || status(r) != "Success" {
		t.Fatalf("olga lowering her own subscription's total: %d %v", r.status, r.body)
	}
	// The default subscription is untouched: a create there still works.
	if _, _, err := admin.CreateCompute(ctx(t), createReq("after-olga", "Standard_B1s")); err != nil {
		t.Errorf("create in the default subscription after olga's change: %v; want it to work", err)
	}
	total := func(tok, sub string) (used, limit int64) {
		t.Helper()
		r := call(t, s, tok, "GET", loc(sub)+"/usages"+apiV, "")
		if r.status != 200 {
			t.Fatalf("usages of %s: %d %v", sub, r.status, r.body)
		}
		for _, u := range r.body["value"].([]any) {
			m := u.(map[string]any)
			if strings.HasSuffix(m["id"].(string), "/totalCores") {
				return int64(m["currentValue"].(float64)), int64(m["limit"].(float64))
			}
		}
		t.Fatalf("no totalCores usage for %s", sub)
		return 0, 0
	}
	if used, limit := total(s.token(), chubSub); used != 1 || limit != 200 {
		t.Errorf("default subscription: %d used, limit %d; want 1 and 200", used, limit)
	}
	if used, limit := total(otok, foreignSub); used != 0 || limit != 0 {
		t.Errorf("olga's subscription: %d used, limit %d; want 0 and 0 (usages are per subscription)", used, limit)
	}
	// She cannot raise her own limits: that is an administrator's (at /).
	if r := setTotal(otok, foreignSub, "100000"); status(r) != "InvalidQuotaExceedsSubscriptionLimit" {
		t.Errorf("olga raising her subscription's total: %d %v; want status InvalidQuotaExceedsSubscriptionLimit", r.status, r.body)
	}
	if _, limit := total(otok, foreignSub); limit != 0 {
		t.Errorf("olga's total after her raise: %d; want 0", limit)
	}
	// Nor touch the default subscription's.
	if r := setTotal(otok, chubSub, "0"); r.status != 403 {
		t.Errorf("olga setting the default subscription's total: %d; want 403", r.status)
	}
	// A create in her subscription counts against its own quota (0 cores).
	fws := "/subscriptions/" + foreignSub + "/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/olgaws"
	if r := call(t, s, otok, "PUT", fws+apiV, `{"location":"local","properties":{}}`); r.status >= 300 {
		t.Fatalf("olga creating a workspace: %d %v", r.status, r.body)
	}
	r := call(t, s, otok, "PUT", fws+"/computes/olga-box"+apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_B1s"}}}`)
	if r.status != 409 || r.errorField("code") != "QuotaExceeded" {
		t.Errorf("create in olga's subscription with 0 cores: %d %v; want 409 QuotaExceeded", r.status, r.body)
	}
	if r.status == 201 { // the cleanup deletes the default workspace's instances only
		call(t, s, otok, "DELETE", fws+"/computes/olga-box"+apiV, "")
		waitFor(t, 2*60e9, "olga-box deleted", func() bool {
			return call(t, s, otok, "GET", fws+"/computes/olga-box"+apiV, "").status == 404
		})
	}
	// An administrator at / raises it.
	if r := setTotal(s.token(), foreignSub, "4"); status(r) != "Success" {
		t.Errorf("the administrator raising olga's total: %d %v", r.status, r.body)
	}
	if _, limit := total(s.token(), foreignSub); limit != 4 {
		t.Errorf("olga's total after the administrator's raise: %d; want 4", limit)
	}
}
