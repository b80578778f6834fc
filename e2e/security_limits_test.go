package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawCall sends one request with a chosen Host header and body reader, and
// answers the status, headers and decoded JSON body.
func rawCall(t *testing.T, s *server, token, method, path, host string, body io.Reader, contentLength int64) apiResult {
	t.Helper()
	hc, err := s.httpClient()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, "https://"+s.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentLength > 0 {
		req.ContentLength = contentLength
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := apiResult{status: resp.StatusCode, header: resp.Header}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &r.body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
		}
	}
	return r
}

func wantError(t *testing.T, what string, r apiResult, status int, code, target, msgHas string) {
	t.Helper()
	if r.status != status || r.errorField("code") != code || r.errorField("target") != target || !strings.Contains(r.errorField("message"), msgHas) {
		t.Errorf("%s: %d %v; want %d %s target %q mentioning %q", what, r.status, r.body, status, code, target, msgHas)
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestSecurityLimits covers issue 8's small findings end to end: token
// lifetimes, the external URL in place of the Host header, tag, description
// and schedule limits, api-version, body size, sign-in throttling, the admin
// token's and the store's file permissions, and the CLI's create on an
// existing name.
func TestSecurityLimits(t *testing.T) {
	// The external URL names this server as "localhost" (its certificate
	// covers it), so it differs from both the Host header and --listen.
	addr := freePort(t)
	ext := "https://localhost:" + strings.Split(addr, ":")[1]
	s := startServerAt(t, addr, "--page-size", "1", "--external-url", ext)
	tok := s.token()
	const evil = "evil.example:443"

	t.Run("token lifetime is bounded", func(t *testing.T) {
		r := call(t, s, tok, "POST", "/chub/v1/users/admin/tokens", `{"name":"forever","expiresInDays":106752}`)
		wantError(t, "106752 days", r, 400, "InvalidExpiry", "expiresInDays", "3650")
		r = call(t, s, tok, "POST", "/chub/v1/users/admin/tokens", `{"name":"ten years","expiresInDays":3650}`)
		if r.status != 201 {
			t.Fatalf("3650 days: %d %v", r.status, r.body)
		}
		exp, err := time.Parse(time.RFC3339Nano, r.body["expiresAt"].(string))
		if err != nil || exp.Before(time.Now().Add(3649*24*time.Hour)) || exp.After(time.Now().Add(3651*24*time.Hour)) {
			t.Fatalf("3650 days expire at %v (%v)", exp, err)
		}
		_, stderr, code := s.chub(t, "", "token", "create", "--user", "admin", "--expires-in-days", "4000")
		if code == 0 || !strings.Contains(stderr, "3650") {
			t.Fatalf("chub token create --expires-in-days 4000: exit %d, %q; want refused naming 3650", code, stderr)
		}
	})

	t.Run("api-version must be a known version", func(t *testing.T) {
		for _, v := range []string{"2024-13-45", "2024-02-30", "2024-01-02", "2025-06-01-preview", "2018-03-01"} {
			r := call(t, s, tok, "GET", wsPath+"/computes?api-version="+v, "")
			wantError(t, v, r, 400, "InvalidApiVersionParameter", "api-version", "2025-06-01")
			if !strings.Contains(r.errorField("message"), "2024-04-01") || !strings.Contains(r.errorField("message"), v) {
				t.Errorf("%s: message %q does not name the version and the supported ones", v, r.errorField("message"))
			}
		}
		for _, v := range []string{"2025-06-01", "2024-04-01", "2022-10-01", "2018-03-01-preview", "2023-04-01-PREVIEW"} {
			if r := call(t, s, tok, "GET", wsPath+"/computes?api-version="+v, ""); r.status != 200 {
				t.Errorf("%s: %d %v; want 200", v, r.status, r.body)
			}
		}
	})

	t.Run("a huge body is 413", func(t *testing.T) {
		const size = 50 << 20
		body := io.MultiReader(strings.NewReader(`{"properties":{"description":"`), io.LimitReader(zeros{}, size))
		r := rawCall(t, s, tok, "PUT", wsPath+"/computes/huge1"+apiV, "", body, size+31)
		wantError(t, "50 MB body", r, 413, "RequestEntityTooLarge", "", "1048576")
		// Without a Content-Length (chunked) the limit holds as well.
		body = io.MultiReader(strings.NewReader(`{"properties":{"description":"`), io.LimitReader(zeros{}, 2<<20))
		r = rawCall(t, s, tok, "PUT", wsPath+"/computes/huge2"+apiV, "", struct{ io.Reader }{body}, 0)
		wantError(t, "2 MB chunked body", r, 413, "RequestEntityTooLarge", "", "1048576")
	})

	t.Run("tags and description are limited", func(t *testing.T) {
		many := map[string]string{}
		for i := range 51 {
			many[fmt.Sprintf("k%d", i)] = "v"
		}
		put := func(name string, tags map[string]string, desc string) apiResult {
			b, _ := json.Marshal(map[string]any{"tags": tags, "properties": map[string]any{"computeType": "ComputeInstance", "description": desc,
				"properties": map[string]any{"vmSize": "Standard_DS1_v2"}}})
			return call(t, s, tok, "PUT", wsPath+"/computes/"+name+apiV, string(b))
		}
		wantError(t, "51 tags", put("tags1", many, ""), 400, "InvalidTag", "tags", "50")
		wantError(t, "long tag name", put("tags2", map[string]string{strings.Repeat("n", 513): "v"}, ""), 400, "InvalidTag", "tags", "512")
		wantError(t, "long tag value", put("tags3", map[string]string{"k": strings.Repeat("v", 257)}, ""), 400, "InvalidTag", "tags.k", "256")
		wantError(t, "tag name with a slash", put("tags4", map[string]string{"a/b": "v"}, ""), 400, "InvalidTag", "tags", "a/b")
		wantError(t, "long description", put("desc1", nil, strings.Repeat("d", 5001)), 400, "InvalidDescription", "properties.description", "5000")
		// The workspace PUT applies the same rules.
		b, _ := json.Marshal(map[string]any{"tags": many, "properties": map[string]any{}})
		wantError(t, "workspace with 51 tags", call(t, s, tok, "PUT", strings.Replace(wsPath, "/default", "/tagged", 2)+apiV, string(b)), 400, "InvalidTag", "tags", "50")
	})

	t.Run("schedules are validated", func(t *testing.T) {
		put := func(name, sched string) apiResult {
			return call(t, s, tok, "PUT", wsPath+"/computes/"+name+apiV, `{"properties":{"computeType":"ComputeInstance","properties":{"vmSize":"Standard_DS1_v2",`+
				`"schedules":{"computeStartStop":[`+sched+`]}}}}`)
		}
		const tgt = "properties.properties.schedules.computeStartStop[0]."
		wantError(t, "cron 99 99", put("cron1", `{"action":"Stop","triggerType":"Cron","cron":{"expression":"99 99 * * *"}}`), 400, "InvalidSchedule", tgt+"cron.expression", "99")
		wantError(t, "cron month 13", put("cron2", `{"action":"Stop","triggerType":"Cron","cron":{"expression":"0 18 * 13 *"}}`), 400, "InvalidSchedule", tgt+"cron.expression", "13")
		wantError(t, "cron step 0", put("cron3", `{"action":"Stop","triggerType":"Cron","cron":{"expression":"*/0 18 * * *"}}`), 400, "InvalidSchedule", tgt+"cron.expression", "step")
		wantError(t, "recurrence hour 24", put("rec1", `{"action":"Start","triggerType":"Recurrence","recurrence":{"frequency":"Day","interval":1,"schedule":{"hours":[24],"minutes":[0]}}}`),
			400, "InvalidSchedule", tgt+"recurrence.schedule.hours", "24")
		wantError(t, "recurrence minute 60", put("rec2", `{"action":"Start","triggerType":"Recurrence","recurrence":{"frequency":"Day","interval":1,"schedule":{"hours":[8],"minutes":[60]}}}`),
			400, "InvalidSchedule", tgt+"recurrence.schedule.minutes", "60")
		wantError(t, "recurrence interval 0", put("rec3", `{"action":"Start","triggerType":"Recurrence","recurrence":{"frequency":"Day","interval":0,"schedule":{"hours":[8],"minutes":[0]}}}`),
			400, "InvalidSchedule", tgt+"recurrence.interval", "interval")
	})

	t.Run("URLs name the external URL, never the Host header", func(t *testing.T) {
		for _, name := range []string{"hosty1", "hosty2"} {
			r := rawCall(t, s, tok, "PUT", wsPath+"/computes/"+name+apiV, evil,
				strings.NewReader(`{"tags":{"team":"a"},"properties":{"computeType":"ComputeInstance","description":"keep me","properties":{"vmSize":"Standard_DS1_v2"}}}`), 0)
			if r.status != 201 {
				t.Fatalf("create %s: %d %v", name, r.status, r.body)
			}
			if h := r.header.Get("Azure-AsyncOperation"); !strings.HasPrefix(h, ext+"/subscriptions/") {
				t.Errorf("create's Azure-AsyncOperation = %q; want it under %s", h, ext)
			}
		}
		r := rawCall(t, s, tok, "GET", wsPath+"/computes"+apiV, evil, nil, 0)
		if next, _ := r.body["nextLink"].(string); !strings.HasPrefix(next, ext+"/subscriptions/") {
			t.Errorf("list's nextLink = %q; want it under %s", next, ext)
		}
		r = rawCall(t, s, tok, "DELETE", wsPath+"/computes/hosty2"+apiV+"&underlyingResourceAction=Delete", evil, nil, 0)
		for _, h := range []string{"Location", "Azure-AsyncOperation"} {
			if v := r.header.Get(h); !strings.HasPrefix(v, ext+"/subscriptions/") {
				t.Errorf("delete (%d)'s %s = %q; want it under %s", r.status, h, v, ext)
			}
		}
		if loc := r.header.Get("Location"); loc != "" {
			path := strings.TrimPrefix(loc, ext)
			r = rawCall(t, s, tok, "GET", path, evil, nil, 0)
			if r.status == 202 && !strings.HasPrefix(r.header.Get("Location"), ext+"/") {
				t.Errorf("operation result's Location = %q; want it under %s", r.header.Get("Location"), ext)
			}
		}
		if st := r.header.Get("Azure-AsyncOperation"); st != "" {
			r = rawCall(t, s, tok, "GET", strings.TrimPrefix(st, ext), evil, nil, 0)
			if id, _ := r.body["id"].(string); !strings.HasPrefix(id, ext+"/") {
				t.Errorf("operation status id = %q; want it under %s", id, ext)
			}
		}
	})

	t.Run("chub computetarget create refuses an existing name", func(t *testing.T) {
		_, stderr, code := s.chub(t, "", "computetarget", "create", "computeinstance", "-n", "hosty1", "-s", "Standard_DS1_v2", "--no-wait")
		if code == 0 || !strings.Contains(stderr, "hosty1 already exists in workspace default") {
			t.Fatalf("create on an existing name: exit %d, %q; want refused", code, stderr)
		}
		// The API's PUT of an existing instance (an update) keeps the limits too.
		many := map[string]string{}
		for i := range 51 {
			many[fmt.Sprintf("k%d", i)] = "v"
		}
		b, _ := json.Marshal(map[string]any{"tags": many, "properties": map[string]any{"computeType": "ComputeInstance", "properties": map[string]any{}}})
		wantError(t, "update with 51 tags", call(t, s, tok, "PUT", wsPath+"/computes/hosty1"+apiV, string(b)), 400, "InvalidTag", "tags", "50")
		ci, err := s.client().GetCompute(ctx(t), "", "hosty1")
		if err != nil || ci.Tags["team"] != "a" || len(ci.Tags) != 1 || ci.Properties.Description != "keep me" {
			t.Fatalf("after the refused create and update hosty1 has tags %v, description %q (%v); want them kept", ci.Tags, ci.Properties.Description, err)
		}
	})

	t.Run("sign-in is throttled per user name", func(t *testing.T) {
		admin := s.client()
		for _, u := range []string{"bob", "carol"} {
			if _, err := admin.CreateUser(ctx(t), u, "", "", false); err != nil {
				t.Fatal(err)
			}
			if err := admin.SetPassword(ctx(t), u, "right-password"); err != nil {
				t.Fatal(err)
			}
		}
		signin := func(path, user, pw string) apiResult {
			return call(t, s, "", "POST", path, fmt.Sprintf(`{"userName":%q,"password":%q}`, user, pw))
		}
		for i := range 5 {
			if r := signin("/chub/v1/signin", "bob", "wrong"); r.status != 401 {
				t.Fatalf("wrong password %d: %d %v; want 401", i+1, r.status, r.body)
			}
		}
		for _, path := range []string{"/chub/v1/signin", "/chub/v1/session"} {
			r := signin(path, "bob", "right-password")
			wantError(t, path+" after 5 failures", r, 429, "TooManySignInAttempts", "", "try again")
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("%s: Retry-After %q; want seconds", path, r.header.Get("Retry-After"))
			}
		}
		es, err := admin.Audit(ctx(t), "1h", "bob", "", 50)
		if err != nil {
			t.Fatal(err)
		}
		throttled := 0
		for _, e := range es {
			if e.Status == 429 && e.Result == "Denied" {
				throttled++
			}
		}
		if throttled != 2 {
			t.Errorf("the audit log has %d throttled sign-ins of bob (%+v); want 2", throttled, es)
		}
		// A success resets the count.
		for round := range 2 {
			for range 4 {
				signin("/chub/v1/signin", "carol", "wrong")
			}
			if r := signin("/chub/v1/signin", "carol", "right-password"); r.status != 200 {
				t.Fatalf("carol's sign-in after 4 failures (round %d): %d %v; want 200", round+1, r.status, r.body)
			}
		}
	})

	t.Run("admin token and store files are private", func(t *testing.T) {
		if strings.Contains(s.log.String(), tok) {
			t.Error("the admin token is in the server's output")
		}
		if !strings.Contains(s.log.String(), filepath.Join(s.dataDir, "admin-token")) {
			t.Errorf("the server's output does not say where the admin token is:\n%s", tail(s.log.String(), 2000))
		}
		check := func(when string) {
			if m := mode(t, s.dataDir); m != 0o700 {
				t.Errorf("%s: data dir mode %o; want 700", when, m)
			}
			for _, f := range []string{"admin-token", "chub.db", "chub.db-wal", "chub.db-shm"} {
				if m := mode(t, filepath.Join(s.dataDir, f)); m != 0o600 {
					t.Errorf("%s: %s mode %o; want 600", when, f, m)
				}
			}
		}
		check("first start")
		s.stop(syscall.SIGTERM)
		for _, f := range []string{"chub.db", "chub.db-wal", "chub.db-shm"} {
			os.Chmod(filepath.Join(s.dataDir, f), 0o644)
		}
		os.Chmod(s.dataDir, 0o755)
		s.start()
		check("after a restart over 0644 files")
	})

	// Last: it locks this test's address out of sign-in.
	t.Run("sign-in is throttled per client address", func(t *testing.T) {
		for i := range 40 {
			r := call(t, s, "", "POST", "/chub/v1/signin", fmt.Sprintf(`{"userName":"ghost%d","password":"x"}`, i))
			if r.status == 429 {
				if i < 10 {
					t.Fatalf("locked out after only %d failures of distinct names", i)
				}
				return
			}
			if r.status != 401 {
				t.Fatalf("ghost%d: %d %v", i, r.status, r.body)
			}
		}
		t.Fatal("40 failed sign-ins with distinct user names from one address were never throttled")
	})
}

// startServerAt is startServer on a chosen address.
func startServerAt(t *testing.T, addr string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: t.TempDir(), addr: addr, extra: extra}
	s.start()
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			c := s.client()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if cs, err := c.ListComputes(ctx, ""); err == nil {
				for _, ci := range cs {
					if op, err := c.DeleteCompute(ctx, "", ci.Name); err == nil && op != nil {
						c.Wait(ctx, op, "", "", nil)
					}
				}
			}
			s.stop(syscall.SIGTERM)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.log.String(), 4000))
		}
	})
	return s
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// TestAdminTokenOnTerminal: on an interactive terminal the first start
// prints the admin token itself (TestSecurityLimits checks that a log does
// not get it).
func TestAdminTokenOnTerminal(t *testing.T) {
	master, slave := openPTY(t)
	defer master.Close()
	dir := t.TempDir()
	cmd := exec.Command(chubBin, "server", "--data-dir", dir, "--listen", freePort(t))
	cmd.Stdout, cmd.Stderr = slave, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil || strings.Contains(out.String(), "Created workspace") {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no first-start message on the terminal within 2 minutes: %q", out.String())
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), strings.TrimSpace(string(tok))) {
		t.Fatalf("the terminal did not get the admin token:\n%s", out.String())
	}
}
