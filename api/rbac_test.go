package api

import "testing"

func TestValidScope(t *testing.T) {
	for _, tc := range []struct {
		scope string
		ok    bool
	}{
		{"/", true},
		{"/subscriptions/s", true},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/c", true},
		{"/subscriptions/s/", true},
		{"/subscriptions", false},
		{"/resourceGroups/rg", false},
		{"subscriptions/s", false},
		{"/subscriptions/s/resourceGroups/rg/../..", false},
		{"/subscriptions/s//x", false},
		{"/subscriptions/s/./x", false},
	} {
		if err := validScope(tc.scope); (err == nil) != tc.ok {
			t.Errorf("validScope(%q) = %v; want ok=%v", tc.scope, err, tc.ok)
		}
	}
}
