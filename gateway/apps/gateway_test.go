package apps

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// fakeStore holds users by token hash and computes; the gateway uses only these methods.
type fakeStore struct {
	chub.Store
	users    map[string]*chub.User // by token hash
	computes []*chub.Compute
}

func (f *fakeStore) Authenticate(_ context.Context, h string) (*chub.User, error) {
	if u := f.users[h]; u != nil {
		return u, nil
	}
	return nil, chub.Errorf(chub.KindUnauthenticated, "InvalidAuthenticationToken", "", "bad token")
}

func (f *fakeStore) GetComputeByID(_ context.Context, id string) (*chub.Compute, error) {
	for _, c := range f.computes {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, chub.NotFound("", "no compute %s", id)
}

func (f *fakeStore) ListAllComputes(context.Context) ([]*chub.Compute, error) { return f.computes, nil }

// TestAccess drives the gateway's checks, which all come before the
// application is reached: the stopped instance answers 409 once a caller is
// let through.
func TestAccess(t *testing.T) {
	hash := func(s string) string { return "h:" + s }
	ann := &chub.User{ID: "ann-id", Name: "ann"}
	admin := &chub.User{ID: "admin-id", Name: "admin", Admin: true}
	store := &fakeStore{
		users: map[string]*chub.User{hash("ann-token"): ann, hash("admin-token"): admin},
		computes: []*chub.Compute{
			{ID: "c1", Name: "box", State: chub.StateStopped, CreatedBy: chub.Principal{UserID: "ann-id"}},
			{ID: "c2", Name: "other", State: chub.StateStopped, CreatedBy: chub.Principal{UserID: "ann-id"}},
		},
	}
	now := time.Unix(1_700_000_000, 0)
	g, err := New(Config{Store: store, HashToken: hash, SessionKey: make([]byte, 32), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, target string, h http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "https://hub.example"+target, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		return w
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	// Sign in with ?token=: a sealed cookie for this instance, and a redirect to the clean URL.
	w := serve("GET", "/instances/box/apps/jupyter/tree?x=1&token=ann-token", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/instances/box/apps/jupyter/tree?x=1" {
		t.Fatalf("sign-in: %d to %q; want 303 to the URL without the token", w.Code, w.Header().Get("Location"))
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("sign-in set %d cookies", len(cookies))
	}
	ck := cookies[0]
	if ck.Name != CookieName || ck.Path != "/instances/box/" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || strings.Contains(ck.Value, "ann-token") {
		t.Fatalf("session cookie %+v", ck)
	}
	withCookie := func(v string, extra ...string) http.Header {
		h := http.Header{"Cookie": {CookieName + "=" + v + "; _xsrf=keep"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}

	studio := func(tok string, extra ...string) http.Header {
		h := http.Header{"Cookie": {StudioCookie + "=" + tok + "; _xsrf=keep"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}

	tests := []struct {
		name   string
		method string
		target string
		h      http.Header
		want   int
		code   string
	}{
		{"owner's bearer", "GET", "/instances/box/apps/jupyter/api", bearer("ann-token"), 409, "InvalidComputeState"},
		{"owner's cookie", "GET", "/instances/box/apps/jupyter/api", withCookie(ck.Value), 409, "InvalidComputeState"},
		{"same-origin POST with the cookie", "POST", "/instances/box/apps/jupyter/api/kernels", withCookie(ck.Value, "Origin", "https://hub.example"), 409, "InvalidComputeState"},
		{"cross-origin POST with the cookie", "POST", "/instances/box/apps/jupyter/api/kernels", withCookie(ck.Value, "Origin", "https://evil.example"), 403, "AuthorizationFailed"},
		{"the cookie on another instance", "GET", "/instances/other/apps/jupyter/api", withCookie(ck.Value), 401, "AuthenticationFailed"},
		{"forged cookie", "GET", "/instances/box/apps/jupyter/api", withCookie(ck.Value[:len(ck.Value)-2] + "AA"), 401, "AuthenticationFailed"},
		{"admin", "GET", "/instances/box/apps/jupyter/api", bearer("admin-token"), 403, "AuthorizationFailed"},
		{"admin signing in", "GET", "/instances/box/apps/jupyter/?token=admin-token", nil, 403, "AuthorizationFailed"},
		{"bad token", "GET", "/instances/box/apps/jupyter/api", bearer("nope"), 401, "InvalidAuthenticationToken"},
		{"nothing", "GET", "/instances/box/apps/jupyter/api", nil, 401, "AuthenticationFailed"},
		{"missing instance", "GET", "/instances/nope/apps/jupyter/api", bearer("ann-token"), 404, "ResourceNotFound"},
		{"not an application path", "GET", "/instances/box/files", bearer("ann-token"), 404, "ResourceNotFound"},
		{"owner's Studio session", "GET", "/instances/box/apps/jupyter/api", studio("ann-token"), 409, "InvalidComputeState"},
		{"owner's Studio session, another of her instances", "GET", "/instances/other/apps/jupyter/api", studio("ann-token"), 409, "InvalidComputeState"},
		{"cross-origin POST with the Studio session", "POST", "/instances/box/apps/jupyter/api/kernels", studio("ann-token", "Origin", "https://evil.example"), 403, "AuthorizationFailed"},
		{"admin's Studio session", "GET", "/instances/box/apps/jupyter/api", studio("admin-token"), 403, "AuthorizationFailed"},
		{"ended Studio session", "GET", "/instances/box/apps/jupyter/api", studio("ended"), 401, "AuthenticationFailed"},
	}
	for _, tt := range tests {
		w := serve(tt.method, tt.target, tt.h)
		if w.Code != tt.want || w.Header().Get("x-ms-error-code") != tt.code {
			t.Errorf("%s: %d %s; want %d %s (%s)", tt.name, w.Code, w.Header().Get("x-ms-error-code"), tt.want, tt.code, w.Body)
		}
	}

	if w := serve("GET", "/instances/box/apps/jupyter", nil); w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "/instances/box/apps/jupyter/" {
		t.Errorf("without the trailing slash: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := serve("GET", "/instances/box/apps/jupyter/", http.Header{"Accept": {"text/html"}}); w.Code != 401 || !strings.Contains(w.Body.String(), "<form") {
		t.Errorf("a browser without credentials: %d; want 401 and a sign-in form", w.Code)
	}
	// A revoked token ends its sessions; an expired session is refused.
	delete(store.users, hash("ann-token"))
	if w := serve("GET", "/instances/box/apps/jupyter/api", withCookie(ck.Value)); w.Code != 401 {
		t.Errorf("cookie of a revoked token: %d; want 401", w.Code)
	}
	store.users[hash("ann-token")] = ann
	now = now.Add(13 * time.Hour)
	if w := serve("GET", "/instances/box/apps/jupyter/api", withCookie(ck.Value)); w.Code != 401 {
		t.Errorf("expired cookie: %d; want 401", w.Code)
	}
}

// TestRewriteHidesCredentials checks that the application never sees the
// caller's token or session cookie, and that custom services lose the prefix.
func TestRewriteHidesCredentials(t *testing.T) {
	g := &Gateway{}
	in := httptest.NewRequest("GET", "https://hub.example/instances/box/apps/web/a/b?q=1", nil)
	in.Header.Set("Authorization", "Bearer secret")
	in.Header.Set("Cookie", CookieName+"=sealed; "+StudioCookie+"=studio-secret; "+studioCSRFCookie+"=csrf; _xsrf=keep")
	c := &chub.Compute{ID: "c1", Name: "box"}
	spec, err := specFor(&chub.Compute{ID: "c1", Name: "box", Settings: chub.InstanceSettings{CustomServices: []chub.CustomService{
		{Name: "web", Endpoints: []chub.CustomServiceEndpoint{{Target: 8000}}, AdditionalProperties: map[string]any{"command": "x"}}}}}, "web")
	if err != nil {
		t.Fatal(err)
	}
	in = in.WithContext(context.WithValue(in.Context(), ctxKey{}, &target{compute: c, spec: spec, base: "/instances/box/apps/web/"}))
	out := in.Clone(in.Context())
	g.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	if out.Header.Get("Authorization") != "" || strings.Contains(out.Header.Get("Cookie"), CookieName) || strings.Contains(out.Header.Get("Cookie"), "chub_") || !strings.Contains(out.Header.Get("Cookie"), "_xsrf=keep") {
		t.Errorf("headers to the application: %v", out.Header)
	}
	if out.URL.Host != "c1:8000" || out.URL.Path != "/a/b" || out.URL.RawQuery != "q=1" || out.Host != "hub.example" {
		t.Errorf("rewritten to %s (host %s); want http://c1:8000/a/b?q=1 with the public host", out.URL, out.Host)
	}
}

// TestActiveConnTouches checks that traffic on a long connection counts as
// activity at most once per ensureEvery.
func TestActiveConnTouches(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	touched := make(chan struct{}, 10)
	c := &activeConn{Conn: a, touch: func() { touched <- struct{}{} }}
	c.last.Store(time.Now().UnixNano())
	go io.Copy(io.Discard, b)
	c.Write([]byte("x"))
	select {
	case <-touched:
		t.Fatal("touched within ensureEvery of the dial")
	case <-time.After(50 * time.Millisecond):
	}
	c.last.Store(time.Now().Add(-ensureEvery - time.Second).UnixNano())
	c.Write([]byte("x"))
	c.Write([]byte("x"))
	select {
	case <-touched:
	case <-time.After(time.Second):
		t.Fatal("not touched after ensureEvery of traffic")
	}
	select {
	case <-touched:
		t.Fatal("touched twice")
	case <-time.After(50 * time.Millisecond):
	}
}
