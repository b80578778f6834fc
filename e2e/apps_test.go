package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/computehub/chub"
	"github.com/computehub/chub/client"
)

// TestApplications opens the real Debian Jupyter of a real instance through
// the server: bearer token and browser cookie, kernelspecs, a kernel that
// computes 1+1 over its websocket, a custom service, 403 for everyone but
// the instance's user (admins included), 409 once stopped. It logs the
// proxy's latency against the same request made inside the instance, and
// the instance's memory with Jupyter and a kernel running.
func TestApplications(t *testing.T) {
	s := startServer(t)
	admin := s.client()
	annUser, err := admin.CreateUser(ctx(t), "ann", "Ann", "", false)
	if err != nil {
		t.Fatal(err)
	}
	// Ann may manage computes of the workspace (Contributor there).
	wsScope := "/subscriptions/" + chubSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default"
	if _, err := admin.AssignRole(ctx(t), annUser.ObjectID, "Contributor", wsScope); err != nil {
		t.Fatalf("assign ann Contributor: %v", err)
	}
	tok, err := admin.CreateToken(ctx(t), "ann", "apps", 1)
	if err != nil {
		t.Fatal(err)
	}
	ann := s.clientWithToken(tok.Token)
	web := chub.CustomService{Name: "web", Endpoints: []chub.CustomServiceEndpoint{{Protocol: "http", Target: 8000}},
		AdditionalProperties: map[string]any{"command": "mkdir -p site && echo served-by-web > site/index.html && exec python3 -m http.server {port} --bind 127.0.0.1 --directory site"}}
	ci, op, err := ann.CreateCompute(ctx(t), client.CreateRequest{Name: "apps-box", Settings: chub.InstanceSettings{VMSize: "Standard_DS3_v2", CustomServices: []chub.CustomService{web}}})
	if err != nil || op == nil {
		t.Fatalf("create: %v %v", ci, err)
	}
	if _, err := ann.Wait(ctx(t), op, "", "apps-box", nil); err != nil {
		t.Fatal(err)
	}

	// The instance's applications have their own origin.
	_, port, _ := net.SplitHostPort(s.addr)
	base := "https://apps-box.apps.localhost:" + port
	jupyter := base + "/jupyter/"
	var apps map[string]string
	waitFor(t, 20*time.Second, "Jupyter in the applications list", func() bool {
		c, err := ann.GetCompute(ctx(t), "", "apps-box")
		if err != nil {
			t.Fatal(err)
		}
		apps = map[string]string{}
		for _, a := range c.Properties.Properties.Applications {
			apps[a.DisplayName] = a.EndpointURI
		}
		return apps["Jupyter"] != ""
	})
	if apps["Jupyter"] != jupyter || apps["web"] != base+"/web/" {
		t.Fatalf("applications %v; want Jupyter at %s and web", apps, jupyter)
	}
	if _, ok := apps["JupyterLab"]; ok != hasProgram("jupyter-lab") {
		t.Errorf("JupyterLab listed: %v; want it listed only when jupyter-lab is installed", ok)
	}

	hc, err := s.httpClient()
	if err != nil {
		t.Fatal(err)
	}
	hc.Transport = loopbackNames(hc)
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	do := func(hc *http.Client, method, url string, h http.Header, body string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, data
	}

	// A program with the API's bearer token: the first request starts Jupyter.
	start := time.Now()
	code, _, body := do(hc, "GET", jupyter+"api/kernelspecs", bearer(tok.Token), "")
	t.Logf("first request (starts Jupyter): %v", time.Since(start).Round(time.Millisecond))
	var specs struct {
		Kernelspecs map[string]any `json:"kernelspecs"`
	}
	if code != 200 || json.Unmarshal(body, &specs) != nil || specs.Kernelspecs["python3"] == nil {
		t.Fatalf("GET api/kernelspecs: %d %s; want 200 listing python3", code, body)
	}
	code, _, body = do(hc, "POST", jupyter+"api/kernels", bearer(tok.Token), `{"name":"python3"}`)
	var kernel struct {
		ID string `json:"id"`
	}
	if code != 201 || json.Unmarshal(body, &kernel) != nil || kernel.ID == "" {
		t.Fatalf("POST api/kernels: %d %s; want 201 with an id", code, body)
	}
	if got := runOnKernel(t, hc, strings.Replace(jupyter, "https://", "wss://", 1)+"api/kernels/"+kernel.ID+"/channels", bearer(tok.Token), "1+1"); got != "2" {
		t.Fatalf("1+1 on the kernel: %q; want 2", got)
	}

	// Everyone else gets 403, the administrator included; nobody gets in without credentials.
	if _, err := admin.CreateUser(ctx(t), "bob", "", "", false); err != nil {
		t.Fatal(err)
	}
	bobTok, err := admin.CreateToken(ctx(t), "bob", "apps", 1)
	if err != nil {
		t.Fatal(err)
	}
	for who, token := range map[string]string{"the admin": s.token(), "bob": bobTok.Token} {
		code, h, body := do(hc, "GET", jupyter+"api/kernelspecs", bearer(token), "")
		if code != 403 || h.Get("x-ms-error-code") != "AuthorizationFailed" || !strings.Contains(string(body), `"AuthorizationFailed"`) {
			t.Errorf("%s opening ann's Jupyter: %d %s; want 403 AuthorizationFailed", who, code, body)
		}
		code, _, _ = do(hc, "GET", jupyter+"?token="+url.QueryEscape(token), nil, "")
		if code != 403 {
			t.Errorf("%s signing in to ann's Jupyter: %d; want 403", who, code)
		}
	}
	if code, _, _ := do(hc, "GET", jupyter+"api/kernelspecs", nil, ""); code != 401 {
		t.Errorf("no credentials: %d; want 401", code)
	}
	// Application access and its refusals are in the audit log.
	if es, err := s.client().Audit(ctx(t), "1h", "", "", 0); err != nil {
		t.Fatal(err)
	} else {
		seen := map[string]bool{}
		for _, e := range es {
			if e.Action == chub.ActionComputeAppAccess {
				seen[e.PrincipalName+" "+e.Result] = true
			}
		}
		if !seen["bob Denied"] || !seen["ann Succeeded"] {
			t.Errorf("audit entries of application access: %v; want bob Denied and ann Succeeded", seen)
		}
	}

	// A browser: one visit with ?token= sets the session cookie and redirects
	// to the clean URL; from then on the cookie alone opens the application.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: hc.Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, h, _ := do(browser, "GET", jupyter+"?token="+url.QueryEscape(tok.Token), http.Header{"Accept": {"text/html"}}, "")
	setCookie := h.Get("Set-Cookie")
	if code != 303 || h.Get("Location") != "/jupyter/" {
		t.Fatalf("sign-in: %d to %q; want 303 to the clean URL", code, h.Get("Location"))
	}
	for _, attr := range []string{"chub_app_session=", "Path=/;", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(setCookie+";", attr) {
			t.Errorf("session cookie %q lacks %s", setCookie, attr)
		}
	}
	if strings.Contains(setCookie, tok.Token) || strings.Contains(setCookie, strings.TrimPrefix(tok.Token, "chub_")) {
		t.Fatal("the session cookie holds the API token")
	}
	browser.CheckRedirect = nil
	code, _, body = do(browser, "GET", jupyter, http.Header{"Accept": {"text/html"}}, "")
	if code != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("the browser opening Jupyter with its cookie: %d %.200s", code, body)
	}
	if code, _, body := do(browser, "GET", jupyter+"api/kernels", nil, ""); code != 200 || !strings.Contains(string(body), kernel.ID) {
		t.Fatalf("the browser listing kernels: %d %s", code, body)
	}
	if code, _, _ := do(browser, "POST", jupyter+"api/kernels", http.Header{"Origin": {"https://evil.example"}}, `{"name":"python3"}`); code != 403 {
		t.Errorf("a cross-site POST with the session cookie: %d; want 403", code)
	}
	if code, _, _ := do(hc, "GET", jupyter+"api/kernelspecs", http.Header{"Cookie": {"chub_app_session=forged"}}, ""); code != 401 {
		t.Errorf("a forged cookie: %d; want 401", code)
	}

	// The custom service given at create, then a list replaced through the API.
	if code, _, body := do(hc, "GET", base+"/web/", bearer(tok.Token), ""); code != 200 || !strings.Contains(string(body), "served-by-web") {
		t.Fatalf("custom service web: %d %.200s", code, body)
	}
	svcPath := "/subscriptions/" + chubSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default/computes/apps-box/customServices?api-version=2024-04-01"
	r := call(t, s, tok.Token, "POST", svcPath, `[{"name":"web2","endpoints":[{"protocol":"http","target":8001}],"additionalProperties":{"command":["python3","-c","import http.server as h, os; os.chdir('/tmp'); open('index.html','w').write('web2 here'); h.test(HandlerClass=h.SimpleHTTPRequestHandler, port=8001, bind='127.0.0.1')"]}}]`)
	if r.status != 200 {
		t.Fatalf("POST customServices: %d %v", r.status, r.body)
	}
	if r := call(t, s, tok.Token, "POST", svcPath, `[{"name":"jupyter","endpoints":[{"target":1}],"additionalProperties":{"command":"x"}}]`); r.status != 400 || r.errorField("code") != "InvalidCustomService" {
		t.Errorf("a custom service named jupyter: %d %v; want 400 InvalidCustomService", r.status, r.body)
	}
	if r := call(t, s, bobTok.Token, "POST", svcPath, `[]`); r.status != 403 {
		t.Errorf("bob replacing ann's custom services: %d; want 403", r.status)
	}
	if code, _, body := do(hc, "GET", base+"/web2/", bearer(tok.Token), ""); code != 200 || !strings.Contains(string(body), "web2 here") {
		t.Fatalf("custom service web2: %d %.200s", code, body)
	}
	if code, _, _ := do(hc, "GET", base+"/web/", bearer(tok.Token), ""); code != 404 {
		t.Errorf("the replaced custom service web: %d; want 404", code)
	}
	if out, _ := run(t, ann, "apps-box", `python3 -c "import socket; socket.create_connection(('127.0.0.1', 8000))" 2>&1`); !strings.Contains(out, "refused") {
		t.Errorf("the removed custom service still listens: %s", out)
	}
	c, _ := ann.GetCompute(ctx(t), "", "apps-box")
	var names []string
	for _, a := range c.Properties.Properties.Applications {
		names = append(names, a.DisplayName)
	}
	if sort.Strings(names); !strings.Contains(strings.Join(names, ","), "web2") || strings.Contains(strings.Join(names, ","), "web,") {
		t.Errorf("applications after the replacement: %v", names)
	}

	measureApps(t, s, ann, hc, jupyter, tok.Token)

	act(t, ann, "apps-box", chub.OpStop)
	code, _, body = do(hc, "GET", jupyter+"api/kernelspecs", bearer(tok.Token), "")
	if code != 409 || !strings.Contains(string(body), "Stopped") || !strings.Contains(string(body), "start") {
		t.Fatalf("a stopped instance's Jupyter: %d %s; want 409 saying it is stopped", code, body)
	}
}

// chubSub is the bootstrapped subscription.
const chubSub = "00000000-0000-0000-0000-000000000000"

func hasProgram(p string) bool {
	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		if fileExists(filepath.Join(d, p)) {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := filepath.EvalSymlinks(p)
	return err == nil
}

// runOnKernel runs code on a Jupyter kernel over its websocket (messaging
// protocol v5) and returns the text/plain of its execute_result.
func runOnKernel(t *testing.T, hc *http.Client, wsURL string, h http.Header, code string) string {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(cctx, wsURL, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: h})
	if err != nil {
		t.Fatalf("kernel websocket: %v", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	id := make([]byte, 16)
	rand.Read(id)
	msgID := hex.EncodeToString(id)
	msg := map[string]any{
		"header": map[string]any{"msg_id": msgID, "username": "e2e", "session": "e2e-" + msgID, "msg_type": "execute_request",
			"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": true, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true},
	}
	data, _ := json.Marshal(msg)
	if err := conn.Write(cctx, websocket.MessageText, data); err != nil {
		t.Fatalf("send execute_request: %v", err)
	}
	for {
		_, data, err := conn.Read(cctx)
		if err != nil {
			t.Fatalf("waiting for execute_result: %v", err)
		}
		var m struct {
			Channel      string         `json:"channel"`
			Header       map[string]any `json:"header"`
			ParentHeader map[string]any `json:"parent_header"`
			Content      struct {
				Data  map[string]string `json:"data"`
				Ename string            `json:"ename"`
			} `json:"content"`
		}
		if json.Unmarshal(data, &m) != nil || m.ParentHeader["msg_id"] != msgID {
			continue
		}
		switch m.Header["msg_type"] {
		case "execute_result":
			return m.Content.Data["text/plain"]
		case "error":
			t.Fatalf("kernel error: %s", data)
		}
	}
}

// measureApps logs the proxy's latency (the median of many small GETs of
// Jupyter's /api through the server, with keep-alive) against the same
// request made inside the instance, and the instance's memory.
func measureApps(t *testing.T, s *server, ann *client.Client, hc *http.Client, jupyter, token string) {
	t.Helper()
	const n = 200
	req, _ := http.NewRequest("GET", jupyter+"api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var ds []time.Duration
	for i := 0; i < n+10; i++ {
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET api: %d", resp.StatusCode)
		}
		if i >= 10 {
			ds = append(ds, time.Since(start))
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	inside := mustRun(t, ann, "apps-box", fmt.Sprintf(`python3 - <<'EOF'
import http.client, time
c = http.client.HTTPConnection("127.0.0.1", 18888)
ds = []
for i in range(%d):
    t = time.perf_counter()
    c.request("GET", "/jupyter/api")
    r = c.getresponse(); r.read()
    if i >= 10: ds.append(time.perf_counter() - t)
ds.sort()
print("%%.3f %%.3f" %% (ds[len(ds)//2]*1000, ds[len(ds)*9//10]*1000))
EOF`, n+10))
	procs := strings.TrimSpace(mustRun(t, ann, "apps-box", `ps -eo rss=,args= | awk '
		/jupyter-notebook|jupyter notebook/ {k="jupyter-notebook"} /ipykernel/ {k="python3 kernel"} /http.server|h.test/ {k="custom services"}
		/chub agent/ {k="agent"} {s[k]+=$1; k="other"} END {for (k in s) printf "%s %.1f MiB, ", k, s[k]/1024}'`))
	id := instanceID(t, ann, "apps-box")
	var cgroup, pss int64
	for _, pat := range []string{"/sys/fs/cgroup/memory/*/" + id + "/memory.usage_in_bytes", "/sys/fs/cgroup/*/" + id + "/memory.current"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			fmt.Sscan(readFile(t, m[0]), &cgroup)
			break
		}
	}
	cgs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range cgs {
		if !strings.Contains(readFile(t, p), id) {
			continue
		}
		for _, line := range strings.Split(readFile(t, filepath.Join(filepath.Dir(p), "smaps_rollup")), "\n") {
			var kb int64
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				fmt.Sscan(f[1], &kb)
				pss += kb * 1024
			}
		}
	}
	mem := fmt.Sprintf("memory cgroup %.1f MiB, PSS of its processes %.1f MiB; RSS: %s", float64(cgroup)/(1<<20), float64(pss)/(1<<20), procs)
	t.Logf("application proxy latency, GET Jupyter /api: median %.3f ms, p90 %.3f ms through the server (HTTPS, bearer, keep-alive); inside the instance (median, p90 in ms): %s",
		float64(ds[len(ds)/2].Microseconds())/1000, float64(ds[len(ds)*9/10].Microseconds())/1000, strings.TrimSpace(inside))
	t.Logf("instance memory with Jupyter and one python3 kernel: %s", mem)
}
