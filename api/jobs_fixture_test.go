package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/computehub/chub"
	"github.com/computehub/chub/access"
	"github.com/computehub/chub/agentclient"
	"github.com/computehub/chub/artifacts"
	"github.com/computehub/chub/jobs"
)

// jobsFixture is the API fixture (a real server on a real store) with a
// job controller that is not running (jobs stay as the API leaves them
// unless a test moves them), a real artifact store, and two more users:
// bob, a workspace Contributor, and carol, a Contributor too.
type jobsFixture struct {
	*apiFixture
	bob      *chub.User
	bobTok   string
	ctrl     *jobs.Controller
	arts     *artifacts.Store
	wsPath   string
	external string
}

const apiV = "api-version=2024-04-01"

func newJobsFixture(t testing.TB) *jobsFixture {
	t.Helper()
	fx := &jobsFixture{apiFixture: newAPIFixture(t, t.TempDir())}
	t.Cleanup(func() { fx.store.Close() })
	ctx := context.Background()
	u, err := NewUser("bob", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	secret, tok := NewToken(u.ID, "t", 0)
	if err := fx.store.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := Grant(ctx, fx.store, u.ID, access.ContributorID, fx.scope.ResourceID(), u.ID); err != nil {
		t.Fatal(err)
	}
	fx.bob, fx.bobTok = u, secret
	fx.arts = &artifacts.Store{Dir: t.TempDir()}
	fx.ctrl = jobs.New(jobs.Config{Store: fx.store, Runtime: fuzzRuntime{}, Agents: &agentclient.Client{Runtime: fuzzRuntime{}},
		Artifacts: fx.arts, Catalog: fx.srv.cfg.Catalog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	fx.external = "https://chub.example:8443"
	fx.srv.cfg.Jobs = fx.ctrl
	fx.srv.cfg.Artifacts = fx.arts
	fx.srv.cfg.ExternalURL = fx.external
	fx.wsPath = "/" + fx.scope.ResourceID()[1:]
	return fx
}

// do sends one request as the holder of tok ("" for none).
func (fx *jobsFixture) do(t testing.TB, tok, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	fx.srv.ServeHTTP(w, req)
	return w
}

// arm is the URL of a path under the fixture's workspace.
func (fx *jobsFixture) arm(rest string, query ...string) string {
	q := apiV
	for _, x := range query {
		q += "&" + x
	}
	return fx.wsPath + rest + "?" + q
}

// mkCompute creates an instance as the holder of tok.
func (fx *jobsFixture) mkCompute(t testing.TB, tok, name, extra string) {
	t.Helper()
	body := `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS3_v2"` + extra + `}}}`
	if w := fx.do(t, tok, "PUT", fx.arm("/computes/"+name), body); w.Code != http.StatusCreated {
		t.Fatalf("create compute %s: %d %s", name, w.Code, w.Body)
	}
}

// jobBody is a valid job on compute ci with props merged into properties.
func jobBody(compute string, props map[string]any) string {
	p := map[string]any{"jobType": "Command", "command": "echo hi", "computeId": "azureml:" + compute}
	for k, v := range props {
		if v == nil {
			delete(p, k)
			continue
		}
		p[k] = v
	}
	b, _ := json.Marshal(map[string]any{"properties": p})
	return string(b)
}

// errOf decodes an error envelope.
func errOf(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("not an error envelope (%d): %s", w.Code, w.Body)
	}
	return e.Error
}

// jobOut is the part of a job answer the tests read.
type jobOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		JobType       string                     `json:"jobType"`
		Command       string                     `json:"command"`
		ComputeID     string                     `json:"computeId"`
		CodeID        *string                    `json:"codeId"`
		EnvironmentID *string                    `json:"environmentId"`
		Status        string                     `json:"status"`
		IsArchived    bool                       `json:"isArchived"`
		Tags          map[string]string          `json:"tags"`
		Description   *string                    `json:"description"`
		Limits        map[string]*string         `json:"limits"`
		Outputs       map[string]map[string]any  `json:"outputs"`
		Inputs        map[string]map[string]any  `json:"inputs"`
		Services      map[string]*map[string]any `json:"services"`
		ExperimentNm  string                     `json:"experimentName"`
		StatusMessage string                     `json:"statusMessage"`
		QueuePosition *int                       `json:"queuePosition"`
	} `json:"properties"`
}

func decodeAs[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, w.Body)
	}
	return v
}

// gzipTar is a tar.gz of the given files.
func gzipTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	writeTarGz(t, &buf, files)
	return buf.Bytes()
}
