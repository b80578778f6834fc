package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// endJob makes job name Completed with logs and outputs kept, as the
// controller leaves it.
func (fx *jobsFixture) endJob(t *testing.T, name string, logs map[string]string, outputs map[string]string) *chub.Job {
	t.Helper()
	ctx := context.Background()
	j, err := fx.store.GetJob(ctx, fx.scope, name)
	if err != nil {
		t.Fatal(err)
	}
	for stream, text := range logs {
		if _, _, err := fx.arts.PutLog(j.ID, stream, strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range sortedKeys(outputs) {
		for d := p[:strings.LastIndex(p, "/")]; d != "" && !dirs[d]; d = d[:max(strings.LastIndex(d, "/"), 0)] {
			dirs[d] = true
		}
	}
	ds := sortedKeys(dirs)
	sort.Strings(ds)
	for _, d := range ds {
		tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for _, p := range sortedKeys(outputs) {
		tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(outputs[p]))})
		io.WriteString(tw, outputs[p])
	}
	tw.Close()
	n, _, err := fx.arts.PutOutputs(j.ID, &buf)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC()
	code := 0
	j.Status, j.EndTime, j.ExitCode = chub.JobCompleted, &end, &code
	j.Artifacts = chub.JobArtifacts{Kept: true, StdoutBytes: int64(len(logs["stdout"])), OutputBytes: n}
	if err := fx.store.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	return j
}

// tarNames lists the entries of a tar.gz.
func tarNames(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a gzip stream: %v", err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(h.Name, "/")] = string(body)
	}
}

func TestJobKeptLogsAndOutputs(t *testing.T) {
	fx := newJobsFixture(t)
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	body := jobBody("ci1", map[string]any{"outputs": map[string]any{
		"model": map[string]any{"jobOutputType": "uri_folder"}, "other": map[string]any{"jobOutputType": "uri_folder"}}})
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), body); w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	fx.endJob(t, "j1", map[string]string{"stdout": "hello\nworld\n", "std_log": "hello\nworld\n", "stderr": ""},
		map[string]string{"outputs/model/w.bin": "weights", "outputs/other/x.txt": "x", "outputs/top.txt": "t"})
	for _, c := range []struct {
		query []string
		want  string
	}{
		{[]string{"stream=stdout"}, "hello\nworld\n"},
		{[]string{"stream=stdout", "offset=6"}, "world\n"},
		{[]string{"stream=stdout", "offset=600"}, ""},
		{[]string{"follow=true"}, "hello\nworld\n"},
		{[]string{"stream=stderr", "follow=true"}, ""},
	} {
		w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/j1/logs", c.query...), "")
		if w.Code != 200 || w.Body.String() != c.want || w.Header().Get("X-Chub-Job-Status") != "Completed" {
			t.Errorf("logs %v: %d %q status %q; want 200 %q Completed", c.query, w.Code, w.Body, w.Header().Get("X-Chub-Job-Status"), c.want)
		}
	}
	w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/j1/outputs"), "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/gzip" {
		t.Fatalf("outputs: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	all := tarNames(t, w.Body.Bytes())
	if all["outputs/model/w.bin"] != "weights" || all["outputs/other/x.txt"] != "x" || all["outputs/top.txt"] != "t" {
		t.Errorf("outputs hold %v; want every file", all)
	}
	w = fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/j1/outputs", "name=model"), "")
	if w.Code != 200 {
		t.Fatalf("outputs name=model: %d %s", w.Code, w.Body)
	}
	one := tarNames(t, w.Body.Bytes())
	for n := range one {
		if n != "outputs/model" && !strings.HasPrefix(n, "outputs/model/") {
			t.Errorf("outputs name=model holds %s", n)
		}
	}
	if one["outputs/model/w.bin"] != "weights" {
		t.Errorf("outputs name=model: %v; want outputs/model/w.bin", one)
	}
	if w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/j1/outputs", "name=nope"), ""); w.Code != 404 {
		t.Errorf("outputs of an undeclared name: %d; want 404", w.Code)
	}
	// A job that ended before it ran kept nothing: 404, not an empty archive.
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j2"), jobBody("ci1", nil)); w.Code != 201 {
		t.Fatal(w.Body)
	}
	if w := fx.do(t, fx.adminTok, "POST", fx.arm("/jobs/j2/cancel"), ""); w.Code != 202 {
		t.Fatal(w.Body)
	}
	if w := fx.do(t, fx.readerTok, "GET", fx.arm("/jobs/j2/outputs"), ""); w.Code != 404 {
		t.Errorf("outputs of a job canceled before it ran: %d %s; want 404", w.Code, w.Body)
	}
}

// Deleting a workspace removes what the artifact store kept of its jobs
// and codes, not only their rows.
func TestDeleteWorkspaceRemovesArtifacts(t *testing.T) {
	fx := newJobsFixture(t)
	ctx := context.Background()
	fx.mkCompute(t, fx.adminTok, "ci1", "")
	if w := fx.do(t, fx.adminTok, "PUT", fx.arm("/jobs/j1"), jobBody("ci1", nil)); w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	j := fx.endJob(t, "j1", map[string]string{"stdout": "hello\n"}, map[string]string{"outputs/a.txt": "a"})
	fx.readyCode(t, "src", "1")
	code, err := fx.store.GetAsset(ctx, chub.AssetCode, fx.scope, "src", "1")
	if err != nil {
		t.Fatal(err)
	}
	blob := code.CodeURI[strings.LastIndex(code.CodeURI, "/")+1:]
	c, err := fx.store.GetCompute(ctx, fx.scope, "ci1")
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.store.RemoveCompute(ctx, c); err != nil { // as the reconciler does once it is destroyed
		t.Fatal(err)
	}
	for _, open := range []func() error{
		func() error { f, err := fx.arts.OpenLog(j.ID, "stdout"); closeIf(f); return err },
		func() error { f, err := fx.arts.OpenBlob(blob); closeIf(f); return err },
	} {
		if err := open(); err != nil {
			t.Fatalf("before the delete: %v", err)
		}
	}
	if w := fx.do(t, fx.adminTok, "DELETE", "/"+fx.scope.ResourceID()[1:]+"?"+apiV, ""); w.Code != 200 {
		t.Fatalf("delete workspace: %d %s", w.Code, w.Body)
	}
	if f, err := fx.arts.OpenLog(j.ID, "stdout"); err == nil {
		f.Close()
		t.Error("the job's log is still kept after its workspace was deleted")
	}
	if f, err := fx.arts.OpenOutputs(j.ID); err == nil {
		f.Close()
		t.Error("the job's outputs are still kept after its workspace was deleted")
	}
	if f, err := fx.arts.OpenBlob(blob); err == nil {
		f.Close()
		t.Error("the code's upload is still kept after its workspace was deleted")
	}
}

func closeIf(f interface{ Close() error }) {
	if f != nil {
		f.Close()
	}
}
