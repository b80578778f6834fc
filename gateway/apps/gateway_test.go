package apps

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
		req := httptest.NewRequest(method, target, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		if g.Owns(req.Host) {
			g.ServeHTTP(w, req)
		} else {
			g.ServeHandoff(w, req)
		}
		return w
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	const box, other = "https://box.apps.localhost", "https://other.apps.localhost"

	// Sign in with ?token=: a sealed host-only cookie for this instance, and a redirect to the clean URL.
	w := serve("GET", box+"/jupyter/tree?x=1&token=ann-token", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/jupyter/tree?x=1" {
		t.Fatalf("sign-in: %d to %q; want 303 to the URL without the token", w.Code, w.Header().Get("Location"))
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("sign-in set %d cookies", len(cookies))
	}
	ck := cookies[0]
	if ck.Name != CookieName || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || strings.Contains(ck.Value, "ann-token") {
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
		{"owner's bearer", "GET", box + "/jupyter/api", bearer("ann-token"), 409, "InvalidComputeState"},
		{"owner's cookie", "GET", box + "/jupyter/api", withCookie(ck.Value), 409, "InvalidComputeState"},
		{"same-origin POST with the cookie", "POST", box + "/jupyter/api/kernels", withCookie(ck.Value, "Origin", box), 409, "InvalidComputeState"},
		{"cross-origin POST with the cookie", "POST", box + "/jupyter/api/kernels", withCookie(ck.Value, "Origin", "https://evil.example"), 403, "AuthorizationFailed"},
		{"POST from another instance's origin", "POST", box + "/jupyter/api/kernels", withCookie(ck.Value, "Origin", other), 403, "AuthorizationFailed"},
		{"the cookie on another instance", "GET", other + "/jupyter/api", withCookie(ck.Value), 401, "AuthenticationFailed"},
		{"forged cookie", "GET", box + "/jupyter/api", withCookie(ck.Value[:len(ck.Value)-2] + "AA"), 401, "AuthenticationFailed"},
		{"admin", "GET", box + "/jupyter/api", bearer("admin-token"), 403, "AuthorizationFailed"},
		{"admin signing in", "GET", box + "/jupyter/?token=admin-token", nil, 403, "AuthorizationFailed"},
		{"bad token", "GET", box + "/jupyter/api", bearer("nope"), 401, "InvalidAuthenticationToken"},
		{"nothing", "GET", box + "/jupyter/api", nil, 401, "AuthenticationFailed"},
		{"missing instance", "GET", "https://nope.apps.localhost/jupyter/api", bearer("ann-token"), 404, "ResourceNotFound"},
		{"the origin's root", "GET", box + "/", bearer("ann-token"), 404, "ResourceNotFound"},
		{"a deeper name", "GET", "https://a.box.apps.localhost/jupyter/api", bearer("ann-token"), 404, "ResourceNotFound"},
		{"the apps domain itself", "GET", "https://apps.localhost/ui/compute", bearer("ann-token"), 404, "ResourceNotFound"},
		{"the API's paths", "GET", box + "/subscriptions/x/resourceGroups/y", bearer("ann-token"), 404, "ResourceNotFound"},
		// Studio's session is no credential on an application origin.
		{"owner's Studio session", "GET", box + "/jupyter/api", studio("ann-token"), 401, "AuthenticationFailed"},
		// The old path on Studio's origin never reaches the application.
		{"old path, POST", "POST", "https://hub.example/instances/box/apps/jupyter/api/kernels", studio("ann-token"), 404, "ResourceNotFound"},
		{"old path, admin's Studio session", "GET", "https://hub.example/instances/box/apps/jupyter/api", studio("admin-token"), 403, "AuthorizationFailed"},
		{"old path, not an application", "GET", "https://hub.example/instances/box/files", bearer("ann-token"), 404, "ResourceNotFound"},
	}
	for _, tt := range tests {
		w := serve(tt.method, tt.target, tt.h)
		if w.Code != tt.want || w.Header().Get("x-ms-error-code") != tt.code {
			t.Errorf("%s: %d %s; want %d %s (%s)", tt.name, w.Code, w.Header().Get("x-ms-error-code"), tt.want, tt.code, w.Body)
		}
	}

	if w := serve("GET", box+"/jupyter", bearer("ann-token")); w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "/jupyter/" {
		t.Errorf("without the trailing slash: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := serve("GET", box+"/jupyter/", http.Header{"Accept": {"text/html"}}); w.Code != 401 || !strings.Contains(w.Body.String(), "<form") {
		t.Errorf("a browser without credentials: %d; want 401 and a sign-in form", w.Code)
	}
	// Without a Studio session (or with a token to sign in with) the old path redirects as it is.
	for _, h := range []http.Header{nil, bearer("ann-token"), studio("ended")} {
		if w := serve("GET", "https://hub.example/instances/box/apps/jupyter/tree?a=1", h); w.Code != http.StatusFound || w.Header().Get("Location") != box+"/jupyter/tree?a=1" {
			t.Errorf("old path with %v: %d to %q; want 302 to the application's URL", h, w.Code, w.Header().Get("Location"))
		}
	}

	// The hand-off: Studio's session on Studio's origin gets a single-use code for this instance.
	handoff := func() *url.URL {
		t.Helper()
		w := serve("GET", "https://hub.example/instances/box/apps/jupyter/tree?a=1", studio("ann-token"))
		u, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || err != nil || u.Host != "box.apps.localhost" || u.Path != SigninPath || u.Query().Get("next") != "/jupyter/tree?a=1" || len(u.Query().Get("code")) < 32 {
			t.Fatalf("hand-off: %d to %q", w.Code, w.Header().Get("Location"))
		}
		return u
	}
	u := handoff()
	w = serve("GET", u.String(), nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/jupyter/tree?a=1" || len(w.Result().Cookies()) != 1 {
		t.Fatalf("redeeming the code: %d to %q, cookies %v", w.Code, w.Header().Get("Location"), w.Result().Cookies())
	}
	hc := w.Result().Cookies()[0]
	if hc.Name != CookieName || hc.Path != "/" || hc.Domain != "" || !hc.HttpOnly || !hc.Secure || hc.SameSite != http.SameSiteLaxMode {
		t.Errorf("the hand-off's session cookie %+v", hc)
	}
	if w := serve("GET", box+"/jupyter/api", withCookie(hc.Value)); w.Code != 409 {
		t.Errorf("the hand-off's cookie: %d; want 409 (let through to the stopped instance)", w.Code)
	}
	if w := serve("GET", u.String(), nil); w.Code != 401 || len(w.Result().Cookies()) != 0 {
		t.Errorf("the same code again: %d; want 401", w.Code)
	}
	u = handoff()
	u.Host = "other.apps.localhost"
	if w := serve("GET", u.String(), nil); w.Code != 401 || len(w.Result().Cookies()) != 0 {
		t.Errorf("box's code on other's origin: %d; want 401", w.Code)
	}
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", ""} {
		u = handoff()
		q := u.Query()
		q.Set("next", next)
		u.RawQuery = q.Encode()
		if w := serve("GET", u.String(), nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Errorf("next=%q: %d to %q; want 303 to /", next, w.Code, w.Header().Get("Location"))
		}
	}
	u = handoff()
	now = now.Add(2 * time.Minute)
	if w := serve("GET", u.String(), nil); w.Code != 401 {
		t.Errorf("an expired code: %d; want 401", w.Code)
	}

	// A revoked token ends its sessions; an expired session is refused.
	delete(store.users, hash("ann-token"))
	if w := serve("GET", box+"/jupyter/api", withCookie(ck.Value)); w.Code != 401 {
		t.Errorf("cookie of a revoked token: %d; want 401", w.Code)
	}
	store.users[hash("ann-token")] = ann
	now = now.Add(13 * time.Hour)
	if w := serve("GET", box+"/jupyter/api", withCookie(ck.Value)); w.Code != 401 {
		t.Errorf("expired cookie: %d; want 401", w.Code)
	}
}

// TestRewriteHidesCredentials checks that the application never sees the
// caller's token or ComputeHub's cookies, that custom services lose the
// prefix, and that a program's POST to Jupyter carries an XSRF pair while a
// browser's keeps its own.
func TestRewriteHidesCredentials(t *testing.T) {
	g := &Gateway{}
	in := httptest.NewRequest("GET", "https://box.apps.localhost/web/a/b?q=1", nil)
	in.Header.Set("Authorization", "Bearer secret")
	in.Header.Set("Cookie", CookieName+"=sealed; "+StudioCookie+"=studio-secret; "+studioCSRFCookie+"=csrf; _xsrf=keep")
	c := &chub.Compute{ID: "c1", Name: "box"}
	spec, err := specFor(&chub.Compute{ID: "c1", Name: "box", Settings: chub.InstanceSettings{CustomServices: []chub.CustomService{
		{Name: "web", Endpoints: []chub.CustomServiceEndpoint{{Target: 8000}}, AdditionalProperties: map[string]any{"command": "x"}}}}}, "web", "https://box.apps.localhost")
	if err != nil {
		t.Fatal(err)
	}
	in = in.WithContext(context.WithValue(in.Context(), ctxKey{}, &target{compute: c, spec: spec, base: "/web/", byHeader: true}))
	out := in.Clone(in.Context())
	g.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	if out.Header.Get("Authorization") != "" || strings.Contains(out.Header.Get("Cookie"), CookieName) || strings.Contains(out.Header.Get("Cookie"), "chub_") || !strings.Contains(out.Header.Get("Cookie"), "_xsrf=keep") {
		t.Errorf("headers to the application: %v", out.Header)
	}
	if out.URL.Host != "c1:8000" || out.URL.Path != "/a/b" || out.URL.RawQuery != "q=1" || out.Host != "box.apps.localhost" || out.Header.Get("X-Forwarded-Prefix") != "/web" {
		t.Errorf("rewritten to %s (host %s); want http://c1:8000/a/b?q=1 with the public host", out.URL, out.Host)
	}

	jupyter, err := specFor(c, "jupyter", "https://box.apps.localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, byHeader := range []bool{true, false} {
		in := httptest.NewRequest("POST", "https://box.apps.localhost/jupyter/api/kernels", nil)
		in.Header.Set("Cookie", "_xsrf=browsers; other=1")
		in = in.WithContext(context.WithValue(in.Context(), ctxKey{}, &target{compute: c, spec: jupyter, base: "/jupyter/", byHeader: byHeader}))
		out := in.Clone(in.Context())
		g.rewrite(&httputil.ProxyRequest{In: in, Out: out})
		var xsrf string
		for _, ck := range out.Cookies() {
			if ck.Name == "_xsrf" {
				xsrf += ck.Value
			}
		}
		if byHeader && (len(xsrf) != 64 || out.Header.Get("X-XSRFToken") != xsrf || !strings.Contains(out.Header.Get("Cookie"), "other=1")) {
			t.Errorf("a program's POST: cookies %q, X-XSRFToken %q; want one fresh _xsrf repeated in the header", out.Header.Get("Cookie"), out.Header.Get("X-XSRFToken"))
		}
		if !byHeader && (xsrf != "browsers" || out.Header.Get("X-XSRFToken") != "") {
			t.Errorf("a browser's POST: cookies %q, X-XSRFToken %q; want its own _xsrf and no header added", out.Header.Get("Cookie"), out.Header.Get("X-XSRFToken"))
		}
	}
}

// TestAppCookies checks that an application's cookies become host-only and
// that it cannot set ComputeHub's.
func TestAppCookies(t *testing.T) {
	resp := &http.Response{Header: http.Header{"Set-Cookie": {
		"chub_csrf=tossed; Path=/; Domain=localhost",
		"chub_session=tossed; Path=/",
		CookieName + "=x; Path=/",
		"own=1; Path=/; domain=.apps.localhost; HttpOnly",
		"plain=2",
	}}}
	appCookies(resp)
	got := strings.Join(resp.Header.Values("Set-Cookie"), " | ")
	if got != "own=1; Path=/; HttpOnly | plain=2" {
		t.Errorf("cookies to the browser: %q", got)
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
