package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestARMPaths(t *testing.T) {
	mux := http.NewServeMux()
	var got string
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { got = r.URL.Path })
	h := armPaths(mux)
	cases := []struct {
		path, want string
		status     int
	}{
		{"//subscriptions/s/providers/Microsoft.Authorization/roleDefinitions", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions", 200},
		{"/subscriptions//s///resourceGroups/rg", "/subscriptions/s/resourceGroups/rg", 200},
		{"/subscriptions/s", "/subscriptions/s", 200},
		{"/subscriptions/s/", "/subscriptions/s/", 200},
	}
	for _, tc := range cases {
		got = ""
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "https://chub.example"+tc.path, nil))
		if w.Code != tc.status || got != tc.want {
			t.Errorf("GET %s: %d, handler saw %q; want %d, %q (no redirect)", tc.path, w.Code, got, tc.status, tc.want)
		}
	}
	// A ".." segment is still the mux's to clean (a redirect), never served as is.
	w := httptest.NewRecorder()
	got = ""
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://chub.example/subscriptions/s/../x", nil))
	if got != "" || w.Code/100 != 3 {
		t.Errorf("GET /subscriptions/s/../x: %d, handler saw %q; want a redirect", w.Code, got)
	}
}
