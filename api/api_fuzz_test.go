package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/access"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/sqlite"
)

// fuzzRuntime is a runtime without instances: every instance is absent and
// no agent answers. The API's parsers run before it is reached.
type fuzzRuntime struct{}

func (fuzzRuntime) Name() string                                    { return "fuzz" }
func (fuzzRuntime) Create(context.Context, chub.InstanceSpec) error { return nil }
func (fuzzRuntime) Start(context.Context, chub.InstanceSpec) error  { return nil }
func (fuzzRuntime) Stop(context.Context, string, time.Duration) error {
	return nil
}
func (fuzzRuntime) Destroy(context.Context, string) error { return nil }
func (fuzzRuntime) Inspect(context.Context, string) (chub.InstanceStatus, error) {
	return chub.InstanceStatus{Phase: chub.PhaseAbsent}, nil
}
func (fuzzRuntime) List(context.Context) ([]string, error) { return nil, nil }
func (fuzzRuntime) DialAgent(context.Context, string) (net.Conn, error) {
	return nil, chub.Errorf(chub.KindUnavailable, "AgentUnavailable", "", "no agent in a fuzz run")
}

const fuzzSub = "00000000-0000-0000-0000-000000000000"

// apiFixture is a real API server on a real store with an Owner (admin)
// and a workspace Reader, as the bootstrap makes them.
type apiFixture struct {
	srv           *Server
	store         *sqlite.DB
	admin, reader *chub.User
	adminTok      string
	readerTok     string
	scope         chub.WorkspaceScope
}

func newAPIFixture(t testing.TB, dir string) *apiFixture {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "chub.db"))
	if err != nil {
		t.Fatal(err)
	}
	fx := &apiFixture{store: store, scope: chub.WorkspaceScope{Subscription: fuzzSub, ResourceGroup: "default", Workspace: "default"}}
	mk := func(name, role, scope string) (*chub.User, string) {
		u, err := NewUser(name, "", "", role == access.OwnerID)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		secret, tok := NewToken(u.ID, "fuzz", 0)
		if err := store.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := Grant(ctx, store, u.ID, role, scope, u.ID); err != nil {
			t.Fatal(err)
		}
		return u, secret
	}
	fx.admin, fx.adminTok = mk("admin", access.OwnerID, chub.RootScope)
	fx.reader, fx.readerTok = mk("reader", access.ReaderID, fx.scope.ResourceID())
	now := time.Now().UTC()
	if _, err := store.PutWorkspace(ctx, &chub.Workspace{ID: lifecycle.NewID(), Scope: fx.scope, Location: "local",
		CreatedBy: fx.admin.Principal(), CreatedAt: now, ModifiedAt: now}); err != nil {
		t.Fatal(err)
	}
	catalog := chub.BuiltinCatalog()
	catalogFn := func() *chub.Catalog { return catalog }
	life := &lifecycle.Service{Store: store, Catalog: catalogFn, Region: "local", Wake: func(string) {}}
	fx.srv = New(Config{Store: store, Lifecycle: life, Authorizer: &access.RBAC{Store: store}, Runtime: fuzzRuntime{},
		Catalog: catalogFn, Region: "local", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	fx.srv.SetReady(true)
	return fx
}

// intact reports whether the admin still holds Owner at / and the default
// workspace exists, so that later inputs still reach the handlers.
func (fx *apiFixture) intact() bool {
	ctx := context.Background()
	if _, err := fx.store.Authenticate(ctx, hashToken(fx.adminTok)); err != nil {
		return false
	}
	if ok, err := (&access.RBAC{Store: fx.store}).Permitted(ctx, fx.admin, chub.ActionUsersManage, chub.RootScope); err != nil || !ok {
		return false
	}
	_, err := fx.store.GetWorkspace(ctx, fx.scope)
	return err == nil
}

// fuzzRoutes are the requests FuzzAPI sends, {name} standing for the fuzzed
// name (path-escaped) and {ws} for the fixture's workspace.
var fuzzRoutes = []struct{ method, path string }{
	{"PUT", "{ws}/computes/{name}"},
	{"GET", "{ws}/computes/{name}"},
	{"DELETE", "{ws}/computes/{name}"},
	{"POST", "{ws}/computes/{name}/start"},
	{"POST", "{ws}/computes/{name}/stop"},
	{"POST", "{ws}/computes/{name}/customServices"},
	{"POST", "{ws}/computes/{name}/resize"},
	{"POST", "{ws}/computes/{name}/listNodes"},
	{"GET", "{ws}/computes/{name}/terminal"},
	{"POST", "{ws}/checkComputeNameAvailability"},
	{"GET", "{ws}/computes"},
	{"PUT", "/subscriptions/" + fuzzSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/{name}"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.MachineLearningServices/workspaces"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.MachineLearningServices/locations/{name}/vmSizes"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.MachineLearningServices/locations/local/usages"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.MachineLearningServices/locations/local/quotas"},
	{"POST", "/subscriptions/" + fuzzSub + "/providers/Microsoft.MachineLearningServices/locations/local/updateQuotas"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.MachineLearningServices/locations/local/computeOperationsStatus/{name}"},
	{"POST", "/chub/v1/users"},
	{"POST", "/chub/v1/users/{name}/tokens"},
	{"GET", "/chub/v1/users/{name}/tokens"},
	{"PUT", "/chub/v1/users/{name}/password"},
	{"GET", "/chub/v1/auditLogs"},
	{"GET", "/chub/v1/permissions"},
	{"POST", "/chub/v1/session"},
	{"POST", "/chub/v1/signin"},
	{"PUT", "/providers/Microsoft.Authorization/roleDefinitions/{name}"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.Authorization/roleDefinitions"},
	{"DELETE", "/providers/Microsoft.Authorization/roleDefinitions/{name}"},
	{"PUT", "/subscriptions/" + fuzzSub + "/providers/Microsoft.Authorization/roleAssignments/{name}"},
	{"GET", "/subscriptions/" + fuzzSub + "/providers/Microsoft.Authorization/roleAssignments"},
	{"GET", "/providers/Microsoft.Authorization/roleAssignments/{name}"},
	{"DELETE", "/subscriptions/" + fuzzSub + "/providers/Microsoft.Authorization/roleAssignments/{name}"},
	{"GET", "/{raw}"},
	{"PUT", "/{raw}"},
}

// FuzzAPI sends fuzzed bodies, names and query strings to the real API
// handler on a real store, as an Owner and as a Reader. Whatever the
// input, the answer is never a 5xx server error (the unavailable agent's
// 503 aside) and every error is Azure's envelope with a code.
func FuzzAPI(f *testing.F) {
	guid := "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8"
	seeds := []struct {
		route       uint8
		reader      bool
		name, query string
		body        string
	}{
		{0, false, "ci1", "", `{"location":"local","tags":{"a":"b"},"properties":{"computeType":"ComputeInstance","description":"d","properties":{"vmSize":"Standard_DS1_v2"}}}`},
		{0, false, "ci2", "", `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"STANDARD_DS1_V2","idleTimeBeforeShutdown":"PT30M","schedules":{"computeStartStop":[{"action":"Stop","triggerType":"Cron","cron":{"expression":"0 18 * * *"}}]},"customServices":[{"name":"x","endpoints":[{"target":8080}]}]}}}`},
		{0, true, "ci3", "", `{"properties":{"properties":{"vmSize":"Standard_DS1_v2"}}}`},
		{1, false, "ci1", "", ``},
		{2, false, "ci1", "underlyingResourceAction=Delete", ``},
		{5, false, "ci1", "", `[{"name":"web","image":{"reference":"nginx"},"endpoints":[{"protocol":"http","name":"web","target":80,"published":8080}]}]`},
		{6, false, "ci1", "", `{"properties":{"vmSize":"Standard_DS2_v2"}}`},
		{8, false, "ci1", "cols=80&rows=24", ``},
		{8, false, "ci1", "cols=0&rows=99999", ``},
		{9, false, "", "", `{"name":"ci1","type":"Microsoft.MachineLearningServices/workspaces/computes"}`},
		{10, false, "", "$skip=1", ``},
		{10, true, "", "$skip=-1", ``},
		{11, false, "ws2", "", `{"location":"local","properties":{"friendlyName":"W"}}`},
		{16, false, "", "", `{"value":[{"id":"/subscriptions/x/providers/Microsoft.MachineLearningServices/locations/local/quotas/standardDSv2Family","type":"Microsoft.MachineLearningServices/vmFamily/quotas","limit":10,"unit":"Count"}]}`},
		{16, false, "", "", `{"value":[{"id":"totalCores","limit":-1}]}`},
		{18, false, "", "", `{"name":"bob","password":"correct horse","displayName":"Bob"}`},
		{19, false, "admin", "", `{"name":"t","expiresInDays":106752}`},
		{19, false, "reader", "", `{"name":"t","expiresInDays":-1}`},
		{21, false, "reader", "", `{"password":"short"}`},
		{22, false, "", "since=1h&top=5&principal=admin", ``},
		{22, false, "", "since=2026-11-29T10:00:00Z&top=0", ``},
		{23, true, "", "scope=/subscriptions/x&actions=*/read,Microsoft.MachineLearningServices/workspaces/computes/write", ``},
		{24, false, "", "", `{"name":"admin","password":"wrong password"}`},
		{25, false, "", "", `{"userName":"admin","password":"x"}`},
		{26, false, guid, "", `{"properties":{"roleName":"Op","permissions":[{"actions":["*/read"],"notActions":[]}],"assignableScopes":["/subscriptions/` + fuzzSub + `"]}}`},
		{26, true, guid, "", `{"properties":{"roleName":"Owner","permissions":[{"actions":["*"]}],"assignableScopes":["/"]}}`},
		{27, false, "", "$filter=roleName eq 'Reader'", ``},
		{28, false, guid, "", ``},
		{29, false, guid, "", `{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/` + access.ReaderID + `","principalId":"x"}}`},
		{30, false, "", "$filter=atScope()", ``},
		{30, false, "", "$filter=principalId eq 'x'", ``},
		{31, true, guid, "", ``},
		{32, false, guid, "", ``},
		{33, false, "subscriptions/" + fuzzSub + "/resourceGroups/default/providers/Microsoft.MachineLearningServices/workspaces/default", "api-version=2024-13-45", ``},
		{33, false, "subscriptions//resourceGroups/%2e%2e/providers/Microsoft.Authorization/roleAssignments", "", ``},
		{34, false, "providers/microsoft.authorization/roleDefinitions/x/y", "", `{}`},
	}
	for _, s := range seeds {
		f.Add(s.route, s.reader, s.name, s.query, []byte(s.body))
	}
	dir := f.TempDir()
	fx := newAPIFixture(f, dir)
	resets := 0
	f.Fuzz(func(t *testing.T, route uint8, asReader bool, name, query string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := strings.ReplaceAll(rt.path, "{ws}", fx.scope.ResourceID())
		path = strings.ReplaceAll(path, "{name}", url.PathEscape(name))
		path = strings.ReplaceAll(path, "{raw}", name)
		target := path + "?api-version=" + MaxAPIVersion + "&" + query
		if strings.HasPrefix(query, "api-version=") {
			target = path + "?" + query
		}
		u, err := url.Parse(target)
		if err != nil || u.Path == "" {
			return // not a request a client can send
		}
		req := httptest.NewRequest(rt.method, "https://chub.test/", bytes.NewReader(body))
		req.URL = u
		req.RequestURI = ""
		tok := fx.adminTok
		if asReader {
			tok = fx.readerTok
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		res := rec.Result()
		out, _ := io.ReadAll(res.Body)
		in := rt.method + " " + target + " " + string(body)
		t.Logf("%s: %d", in, res.StatusCode)
		if res.StatusCode >= 500 && res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s\nanswered %d: %s", in, res.StatusCode, out)
		}
		if res.StatusCode >= 400 {
			var env struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(out, &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
				t.Fatalf("%s\nanswered %d without an Azure error envelope: %s", in, res.StatusCode, out)
			}
			if h := res.Header.Get("x-ms-error-code"); h != env.Error.Code {
				t.Fatalf("%s\nx-ms-error-code %q; body code %q", in, h, env.Error.Code)
			}
		} else if len(bytes.TrimSpace(out)) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && !json.Valid(out) {
			t.Fatalf("%s\nanswered %d with invalid JSON: %s", in, res.StatusCode, out)
		}
		if !fx.intact() {
			// The input deleted the admin, its token or role, or the
			// workspace: start over so the next inputs reach the handlers.
			fx.store.Close()
			resets++
			fx = newAPIFixture(t, filepath.Join(dir, strings.Repeat("r", resets%8)+time.Now().Format("150405.000000000")))
		}
	})
}

// FuzzCheckAPIVersion: an accepted api-version is a real date between the
// oldest and newest supported, optionally -preview; a refused one is a 400
// on api-version.
func FuzzCheckAPIVersion(f *testing.F) {
	for _, v := range []string{"2025-06-01", "2018-03-01-preview", "2023-04-01", "2024-13-45", "2024-02-30", "2025-06-01-PREVIEW", "2019-01-01-alpha", "", "latest", "2025-6-1"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/x?api-version="+url.QueryEscape(v), nil)
		err := checkAPIVersion(r)
		if err != nil {
			if e, ok := err.(*chub.Error); !ok || e.Kind != chub.KindInvalid || e.Target != "api-version" || e.Code == "" {
				t.Fatalf("checkAPIVersion(%q) = %#v; want a 400 on api-version", v, err)
			}
			return
		}
		date, suffix := v, ""
		if len(v) > 10 {
			date, suffix = v[:10], v[10:]
		}
		d, perr := time.Parse("2006-01-02", date)
		if perr != nil || (suffix != "" && !strings.EqualFold(suffix, "-preview")) {
			t.Fatalf("accepted api-version %q, which is not a date with an optional -preview", v)
		}
		lo, _ := time.Parse("2006-01-02", "2018-03-01")
		hi, _ := time.Parse("2006-01-02", "2025-06-01")
		if d.Before(lo) || d.After(hi) {
			t.Fatalf("accepted api-version %q, outside 2018-03-01 to 2025-06-01", v)
		}
	})
}

// FuzzParseCells: the terminal's cols and rows are 1-65535 or a 400.
func FuzzParseCells(f *testing.F) {
	for _, s := range [][2]string{{"80", "24"}, {"0", "1"}, {"65536", "1"}, {"-1", "5"}, {"+80", "24"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cols, rows string) {
		sz, err := parseCells(cols, rows)
		if err != nil {
			if chub.ErrorKind(err) != chub.KindInvalid {
				t.Fatalf("parseCells(%q, %q) = %v; want a 400", cols, rows, err)
			}
			return
		}
		if sz.Cols == 0 || sz.Rows == 0 {
			t.Fatalf("parseCells(%q, %q) = %+v", cols, rows, sz)
		}
	})
}

// FuzzAuthorizationPath splits {scope}/providers/Microsoft.Authorization/...
// paths: the scope is a prefix of the path, and the scope a role is
// assigned at is either / or a /subscriptions/... id, or refused with a 400.
func FuzzAuthorizationPath(f *testing.F) {
	for _, p := range []string{"/providers/Microsoft.Authorization/roleDefinitions", "/subscriptions/s/providers/microsoft.authorization/roleAssignments/x",
		"/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/roleAssignments", "/x/providers/Microsoft.Authorization/", "//providers/Microsoft.Authorization/y", "/subscriptions"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		scope, rest, ok := isAuthorizationPath(path)
		if !ok {
			return
		}
		// path is scope, the marker, rest: the split is at the marker.
		const marker = "/providers/microsoft.authorization/"
		cut := len(path) - len(rest) - len(marker)
		if cut < 0 || !strings.HasSuffix(path, rest) || !strings.EqualFold(path[cut:cut+len(marker)], marker) ||
			(scope != "/" || cut > 1) && path[:cut] != scope || strings.Contains(strings.ToLower(path[:cut]), marker) {
			t.Fatalf("isAuthorizationPath(%q) = %q, %q: not split at the first marker", path, scope, rest)
		}
		if err := validScope(scope); err != nil {
			if chub.ErrorKind(err) != chub.KindInvalid {
				t.Fatalf("validScope(%q) = %v; want a 400", scope, err)
			}
			return
		}
		if scope != "/" && !strings.HasPrefix(strings.ToLower(scope), "/subscriptions/") {
			t.Fatalf("validScope accepted %q", scope)
		}
	})
}
