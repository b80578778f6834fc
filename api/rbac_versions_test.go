package api

import "testing"

// Microsoft.Authorization's own api-versions (which its official client
// sends) are served, beside the Machine Learning ones; others are refused.
func TestAuthorizationAPIVersions(t *testing.T) {
	fx := newJobsFixture(t)
	path := "/subscriptions/" + fx.scope.Subscription + "/providers/Microsoft.Authorization/roleDefinitions"
	cases := []struct {
		query string
		code  int
		err   string
	}{
		{"?api-version=2022-04-01", 200, ""},
		{"?api-version=2015-07-01", 200, ""},
		{"?api-version=2024-04-01", 200, ""},
		{"?api-version=2022-04-02", 400, "InvalidApiVersionParameter"},
		{"", 400, "MissingApiVersionParameter"},
	}
	for _, c := range cases {
		w := fx.do(t, fx.adminTok, "GET", path+c.query, "")
		if w.Code != c.code {
			t.Errorf("GET roleDefinitions%s: %d %s; want %d", c.query, w.Code, w.Body, c.code)
			continue
		}
		if c.err != "" {
			if got := errOf(t, w).Code; got != c.err {
				t.Errorf("GET roleDefinitions%s: code %s; want %s", c.query, got, c.err)
			}
		}
	}
}
