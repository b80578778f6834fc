package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// tossService is a custom service that tries cookie tossing: it sets
// Studio's cookie names (one for the parent domain localhost, where Studio
// is in this test) and a cookie of its own, and answers with the cookies it
// was sent.
const tossService = `import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ("toss saw cookies: " + self.headers.get("Cookie", "")).encode()
        self.send_response(200)
        self.send_header("Set-Cookie", "chub_csrf=tossed; Path=/; Domain=localhost")
        self.send_header("Set-Cookie", "chub_session=tossed; Path=/")
        self.send_header("Set-Cookie", "app_own=1; Path=/; Domain=localhost")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
http.server.HTTPServer(("127.0.0.1", int("{port}")), H).serve_forever()
`

// loopbackNames is hc's transport resolving localhost and every name under
// it to 127.0.0.1, as browsers and curl do (RFC 6761); Go's resolver asks DNS.
// TLS still checks the certificate against the name in the URL.
func loopbackNames(hc *http.Client) *http.Transport {
	tr := hc.Transport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	return tr
}

// TestSecurityAppsOrigin (issue 8, finding 4): applications are served from
// their own origin, https://NAME.apps.localhost:PORT/APP/. Studio's origin
// never reaches an application (its old path hands the browser over with a
// single-use code); the application origin serves nothing of the API or
// Studio and does not accept Studio's session cookie; an application's
// Set-Cookie lands on the application's host only (cookie tossing); Studio's
// cookies never reach the application; Jupyter runs with its XSRF check on
// and its allowed origin set to the application origin, while programs with
// the bearer token keep using its API.
func TestSecurityAppsOrigin(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	annUser, err := admin.CreateUser(ctx(t), "ann", "Ann", "", false)
	if err != nil {
		t.Fatal(err)
	}
	wsScope := "/subscriptions/" + chubSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default"
	if _, err := admin.AssignRole(ctx(t), annUser.ObjectID, "Contributor", wsScope); err != nil {
		t.Fatalf("assign ann Contributor: %v", err)
	}
	tok, err := admin.CreateToken(ctx(t), "ann", "apps", 1)
	if err != nil {
		t.Fatal(err)
	}
	ann := s.clientWithToken(tok.Token)
	toss := chub.CustomService{Name: "toss", Endpoints: []chub.CustomServiceEndpoint{{Protocol: "http", Target: 8000}},
		AdditionalProperties: map[string]any{"command": []string{"python3", "-c", tossService}}}
	_, op, err := ann.CreateCompute(ctx(t), client.CreateRequest{Name: "apps-sec", Settings: chub.InstanceSettings{VMSize: "Standard_DS3_v2", CustomServices: []chub.CustomService{toss}}})
	if err != nil || op == nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := ann.Wait(ctx(t), op, "", "apps-sec", nil); err != nil {
		t.Fatal(err)
	}

	_, port, _ := net.SplitHostPort(s.addr)
	studio := "https://localhost:" + port // Studio, by a name whose subdomains a tossed cookie could target
	appHost := "apps-sec.apps.localhost:" + port
	appBase := "https://" + appHost + "/"
	hc, err := s.httpClient()
	if err != nil {
		t.Fatal(err)
	}
	tr := loopbackNames(hc)
	plain := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 3 * time.Minute}
	do := func(c *http.Client, method, u string, h http.Header, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, string(data)
	}
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	html := http.Header{"Accept": {"text/html"}}

	// A browser signs in to Studio (its cookies: chub_session, chub_csrf).
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: tr, Jar: jar, Timeout: 3 * time.Minute}
	if resp, body := do(browser, "POST", studio+"/chub/v1/session", http.Header{"Content-Type": {"application/json"}}, `{"token":"`+tok.Token+`"}`); resp.StatusCode != 200 {
		t.Fatalf("Studio sign-in: %d %s", resp.StatusCode, body)
	}
	studioURL, _ := url.Parse(studio + "/")
	studioCookies := func() map[string]string {
		m := map[string]string{}
		for _, c := range jar.Cookies(studioURL) {
			m[c.Name] = c.Value
		}
		return m
	}
	before := studioCookies()
	if before["chub_session"] == "" || before["chub_csrf"] == "" {
		t.Fatalf("Studio's cookies after sign-in: %v", before)
	}

	// Studio's origin never serves an application: its old path redirects.
	resp, body := do(plain, "GET", studio+"/instances/apps-sec/apps/toss/", bearer(tok.Token), "")
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, appBase) || strings.Contains(body, "toss saw") {
		t.Errorf("Studio's origin at the old application path: %d to %q %.100q; want a redirect to %s", resp.StatusCode, loc, body, appBase)
	}

	// The Studio link: the hand-off ends on the application's origin, and
	// what the application sets never reaches Studio.
	resp, body = do(browser, "GET", studio+"/instances/apps-sec/apps/toss/", html, "")
	if resp.StatusCode != 200 || resp.Request.URL.Host != appHost || !strings.Contains(body, "toss saw cookies:") {
		t.Errorf("the Studio link to toss: %d at %s %.200q; want 200 from toss at %s", resp.StatusCode, resp.Request.URL, body, appHost)
	}
	if strings.Contains(body, "chub_") {
		t.Errorf("toss was sent ComputeHub cookies: %q", body)
	}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "chub_session=tossed") || strings.HasPrefix(sc, "chub_csrf=tossed") || strings.Contains(strings.ToLower(sc), "domain=") {
			t.Errorf("an application's Set-Cookie reached the browser as %q; want it host-only on the application's host, never a ComputeHub cookie", sc)
		}
	}
	if after := studioCookies(); after["chub_csrf"] != before["chub_csrf"] || after["chub_session"] != before["chub_session"] || after["app_own"] != "" {
		t.Errorf("Studio's cookies after opening the application: %v; want them unchanged (%v) and none of the application's", after, before)
	}

	// The API lists the applications at their own origin.
	c, err := ann.GetCompute(ctx(t), "", "apps-sec")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, a := range c.Properties.Properties.Applications {
		listed[a.DisplayName] = a.EndpointURI
	}
	if listed["Jupyter"] != appBase+"jupyter/" || listed["toss"] != appBase+"toss/" {
		t.Errorf("applications %v; want Jupyter at %sjupyter/ and toss at %stoss/", listed, appBase, appBase)
	}

	// The first request starts Jupyter (at whatever URL the API lists).
	if resp, body := do(plain, "GET", listed["Jupyter"]+"api", bearer(tok.Token), ""); resp.StatusCode != 200 {
		t.Fatalf("GET %sapi: %d %.200s", listed["Jupyter"], resp.StatusCode, body)
	}

	// Jupyter itself refuses a cross-origin POST and a POST without XSRF
	// token, and is told its own origin (not *).
	out, _ := run(t, ann, "apps-sec", `python3 - <<'EOF'
import glob, http.client
args = []
for f in glob.glob("/proc/[0-9]*/cmdline"):
    try: argv = open(f, "rb").read().decode(errors="replace").split("\0")
    except OSError: continue
    if any(a.startswith("--NotebookApp.base_url=") for a in argv): args = argv
base = [a for a in args if a.startswith("--NotebookApp.base_url=")][0].split("=", 1)[1]
for a in args:
    if "origin" in a or "xsrf" in a: print(a)
for origin in ("https://evil.example", None):
    c = http.client.HTTPConnection("127.0.0.1", 18888)
    h = {"Content-Type": "application/json"}
    if origin: h["Origin"] = origin
    c.request("POST", base + "api/kernels", body='{"name":"python3"}', headers=h)
    print("origin", origin, "status", c.getresponse().status)
EOF`)
	if !strings.Contains(out, "--NotebookApp.allow_origin=https://"+appHost) || strings.Contains(out, "disable_check_xsrf") {
		t.Errorf("Jupyter's options: %q; want allow_origin=https://%s and no disable_check_xsrf", out, appHost)
	}
	if !strings.Contains(out, "origin https://evil.example status 40") || !strings.Contains(out, "origin None status 403") {
		t.Errorf("POSTs straight to Jupyter without an XSRF token: %q; want 403/404 for another origin and 403 without one", out)
	}

	// The application origin serves nothing of the API or Studio.
	for _, p := range []string{"", "ui/compute", "static/studio.js", "healthz", "chub/v1/permissions?scope=/&actions=x",
		"subscriptions/" + chubSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default/computes?api-version=2024-04-01"} {
		resp, body := do(plain, "GET", appBase+p, bearer(tok.Token), "")
		if resp.StatusCode != 404 || strings.Contains(body, "Studio") || strings.Contains(body, `"value"`) {
			t.Errorf("GET %s%s on the application origin: %d %.120q; want 404", appBase, p, resp.StatusCode, body)
		}
	}
	if resp, _ := do(plain, "POST", appBase+"chub/v1/session", nil, `{"token":"`+tok.Token+`"}`); (resp.StatusCode != 404 && resp.StatusCode != 401) || len(resp.Header.Values("Set-Cookie")) > 0 {
		t.Errorf("Studio sign-in on the application origin: %d %v; want 401 or 404 and no cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}

	// Studio's session cookie is no credential on the application origin,
	// and is never forwarded.
	studioSession := "chub_session=" + before["chub_session"]
	for _, h := range []http.Header{{"Cookie": {studioSession}}, {"Cookie": {studioSession}, "Accept": {"text/html"}}} {
		if resp, body := do(plain, "GET", appBase+"toss/", h, ""); resp.StatusCode != 401 || strings.Contains(body, "toss saw") {
			t.Errorf("Studio's session cookie on the application origin: %d %.100q; want 401", resp.StatusCode, body)
		}
	}
	h := bearer(tok.Token)
	h.Set("Cookie", studioSession+"; chub_csrf="+before["chub_csrf"]+"; chub_app_session=x; keep=1")
	if resp, body := do(plain, "GET", appBase+"toss/", h, ""); resp.StatusCode != 200 || !strings.Contains(body, "keep=1") || strings.Contains(body, "chub_") {
		t.Errorf("cookies toss sees: %d %q; want keep=1 and no ComputeHub cookie", resp.StatusCode, body)
	}

	// The hand-off: a single-use code, a host-only session cookie, a local next.
	handoff := func() string {
		t.Helper()
		resp, _ := do(plain, "GET", studio+"/instances/apps-sec/apps/jupyter/tree", http.Header{"Cookie": {studioSession}, "Accept": {"text/html"}}, "")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 303 || !strings.HasPrefix(loc, appBase+"_chub/signin?") {
			t.Fatalf("the hand-off from Studio: %d to %q; want 303 to %s_chub/signin?code=...", resp.StatusCode, loc, appBase)
		}
		return loc
	}
	loc := handoff()
	if u, _ := url.Parse(loc); u.Query().Get("next") != "/jupyter/tree" || u.Query().Get("code") == "" {
		t.Errorf("the hand-off URL %s; want a code and next=/jupyter/tree", loc)
	}
	resp, _ = do(plain, "GET", loc, nil, "")
	sc := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/jupyter/tree" {
		t.Errorf("signing in with the code: %d to %q; want 303 to /jupyter/tree", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, attr := range []string{"chub_app_session=", "Path=/;", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sc+";", attr) {
			t.Errorf("the application session cookie %q lacks %s", sc, attr)
		}
	}
	if strings.Contains(strings.ToLower(sc), "domain=") {
		t.Errorf("the application session cookie %q is not host-only", sc)
	}
	if resp, _ := do(plain, "GET", loc, nil, ""); resp.StatusCode != 401 || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("the same code again: %d; want 401 (single use)", resp.StatusCode)
	}
	u, _ := url.Parse(handoff())
	q := u.Query()
	q.Set("next", "//evil.example/x")
	u.RawQuery = q.Encode()
	if resp, _ := do(plain, "GET", u.String(), nil, ""); resp.StatusCode/100 == 3 && !strings.HasPrefix(resp.Header.Get("Location"), "/") || strings.HasPrefix(resp.Header.Get("Location"), "//") {
		t.Errorf("a code with next=//evil.example/x: %d to %q; want a local path only", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Programs with the bearer token use Jupyter's API, POSTs and kernels included.
	bc := &http.Client{Transport: tr, Timeout: 3 * time.Minute}
	if resp, body := do(bc, "GET", appBase+"jupyter/api/kernelspecs", bearer(tok.Token), ""); resp.StatusCode != 200 || !strings.Contains(body, "python3") {
		t.Fatalf("bearer GET api/kernelspecs: %d %.200s", resp.StatusCode, body)
	}
	resp, body = do(bc, "POST", appBase+"jupyter/api/kernels", bearer(tok.Token), `{"name":"python3"}`)
	var kernel struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != 201 || json.Unmarshal([]byte(body), &kernel) != nil || kernel.ID == "" {
		t.Fatalf("bearer POST api/kernels: %d %s; want 201", resp.StatusCode, body)
	}
	if got := runOnKernel(t, bc, "wss://"+appHost+"/jupyter/api/kernels/"+kernel.ID+"/channels", bearer(tok.Token), "1+1"); got != "2" {
		t.Fatalf("1+1 on the kernel: %q", got)
	}

	// The browser's session (from the hand-off above): Jupyter's own XSRF
	// check applies to its POSTs; with the _xsrf cookie repeated they pass.
	appURL, _ := url.Parse(appBase)
	if resp, body := do(browser, "GET", appBase+"jupyter/tree", html, ""); resp.StatusCode != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("the browser opening Jupyter: %d %.200s", resp.StatusCode, body)
	}
	xsrf := ""
	for _, c := range jar.Cookies(appURL) {
		if c.Name == "_xsrf" {
			xsrf = c.Value
		}
	}
	origin := http.Header{"Origin": {"https://" + appHost}, "Content-Type": {"application/json"}}
	if resp, body := do(browser, "POST", appBase+"jupyter/api/kernels", origin, `{"name":"python3"}`); resp.StatusCode != 403 {
		t.Errorf("a browser POST without Jupyter's XSRF token: %d %.200s; want 403", resp.StatusCode, body)
	}
	origin.Set("X-XSRFToken", xsrf)
	if resp, body := do(browser, "POST", appBase+"jupyter/api/kernels", origin, `{"name":"python3"}`); xsrf == "" || resp.StatusCode != 201 {
		t.Errorf("a browser POST with the _xsrf cookie %q repeated: %d %.200s; want 201", xsrf, resp.StatusCode, body)
	}
	origin.Set("Origin", "https://evil.example")
	if resp, _ := do(browser, "POST", appBase+"jupyter/api/kernels", origin, `{"name":"python3"}`); resp.StatusCode != 403 {
		t.Errorf("a cross-origin POST with the session cookie: %d; want 403", resp.StatusCode)
	}
}
