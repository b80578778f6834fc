package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

var (
	wsScope    = chub.WorkspaceScope{Subscription: "s", ResourceGroup: "rg", Workspace: "ws"}
	otherScope = chub.WorkspaceScope{Subscription: "s", ResourceGroup: "rg", Workspace: "other"}
)

func newJob(ws *chub.Workspace, name, computeID string, status chub.JobStatus) *chub.Job {
	now := time.Now().UTC().Truncate(time.Millisecond)
	by := chub.Principal{UserID: "u1", UserName: "alice"}
	return &chub.Job{ID: "id-" + ws.ID + "-" + name, WorkspaceID: ws.ID, Scope: ws.Scope, Name: name, ComputeID: computeID,
		Spec:   chub.JobSpec{JobType: "Command", Command: "echo " + name, ComputeID: ws.Scope.ResourceID() + "/computes/" + computeID},
		Status: status, CreatedBy: by, CreatedAt: now, ModifiedBy: by, ModifiedAt: now}
}

func mustCreateJob(t *testing.T, db *DB, j *chub.Job) *chub.Job {
	t.Helper()
	if err := db.CreateJob(context.Background(), j); err != nil {
		t.Fatalf("create job %s: %v", j.Name, err)
	}
	return j
}

func TestJobCreateGetRoundTrip(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	j := newJob(ws, "train-1", "c1", chub.JobNotStarted)
	j.Spec.EnvironmentVariables = map[string]string{"K": "V"}
	j.Spec.Inputs = map[string]chub.JobInput{"lr": {Type: "literal", Value: "0.1"}}
	j.Spec.Outputs = map[string]chub.JobOutput{"model": {Type: "uri_folder"}}
	j.Spec.Timeout = 90 * time.Second
	j.Spec.Tags = map[string]string{"team": "a"}
	j.Message = "waiting"
	mustCreateJob(t, db, j)
	if j.Seq <= 0 || j.Version != 1 {
		t.Fatalf("after create: seq %d version %d; want seq > 0, version 1", j.Seq, j.Version)
	}

	byName, err := db.GetJob(ctx, chub.WorkspaceScope{Subscription: "S", ResourceGroup: "RG", Workspace: "WS"}, "TRAIN-1")
	if err != nil {
		t.Fatalf("get by name in other case: %v", err)
	}
	if !reflect.DeepEqual(byName, j) {
		t.Fatalf("read back\n got %+v\nwant %+v", byName, j)
	}
	byID, err := db.GetJobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byID, j) {
		t.Fatalf("by id\n got %+v\nwant %+v", byID, j)
	}

	// Ended: every optional field set survives a write and a read.
	code := 3
	start, end := j.CreatedAt.Add(time.Second), j.CreatedAt.Add(2*time.Second)
	j.Status, j.ExitCode, j.StartTime, j.EndTime = chub.JobFailed, &code, &start, &end
	j.Error = &chub.ErrorDetail{Code: "JobFailed", Message: "the command exited with code 3"}
	j.Artifacts = chub.JobArtifacts{Kept: true, StdoutBytes: 10, StderrBytes: 2, LogBytes: 12, OutputBytes: 100, Truncated: true}
	if err := db.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j.Version != 2 {
		t.Fatalf("version after update: got %d; want 2", j.Version)
	}
	got, err := db.GetJobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("after update\n got %+v\nwant %+v", got, j)
	}

	errCases := []struct {
		name string
		err  error
		kind chub.Kind
		code string
	}{
		{"same name other case", db.CreateJob(ctx, newJob(ws, "Train-1", "c1", chub.JobNotStarted)), chub.KindConflict, "JobNameNotAvailable"},
		{"same id", db.CreateJob(ctx, &chub.Job{ID: j.ID, WorkspaceID: ws.ID, Name: "x", Status: chub.JobNotStarted}), chub.KindConflict, "JobIdTaken"},
		{"unknown workspace", db.CreateJob(ctx, &chub.Job{ID: "nows", WorkspaceID: "nope", Name: "x", Status: chub.JobNotStarted}), chub.KindNotFound, "ResourceNotFound"},
		{"get unknown name", func() error { _, err := db.GetJob(ctx, wsScope, "nope"); return err }(), chub.KindNotFound, "UserError"},
		{"get in other workspace", func() error { _, err := db.GetJob(ctx, otherScope, "train-1"); return err }(), chub.KindNotFound, "UserError"},
		{"get unknown id", func() error { _, err := db.GetJobByID(ctx, "nope"); return err }(), chub.KindNotFound, "UserError"},
		{"update unknown", db.UpdateJob(ctx, &chub.Job{ID: "nope", Name: "nope", Version: 1}), chub.KindNotFound, "UserError"},
	}
	for _, c := range errCases {
		var e *chub.Error
		if chub.ErrorKind(c.err) != c.kind || !errorAs(c.err, &e) || e.Code != c.code {
			t.Errorf("%s: got %v; want kind %d code %s", c.name, c.err, c.kind, c.code)
		}
	}
}

func errorAs(err error, e **chub.Error) bool { return errors.As(err, e) }

func TestJobSeqFollowsSubmissionOrder(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	var names []string
	var last int64
	// Names in an order unrelated to their submission order.
	for i, n := range []string{"zeta", "alpha", "mid", "beta", "omega", "a0"} {
		j := mustCreateJob(t, db, newJob(ws, n, "c1", chub.JobNotStarted))
		if j.Seq <= last {
			t.Fatalf("job %d (%s): seq %d; want more than the previous %d", i, n, j.Seq, last)
		}
		last = j.Seq
		names = append(names, n)
	}
	// A failed create does not disturb the order of the next ones.
	if err := db.CreateJob(ctx, newJob(ws, "ALPHA", "c1", chub.JobNotStarted)); chub.ErrorKind(err) != chub.KindConflict {
		t.Fatalf("duplicate: %v; want a conflict", err)
	}
	j := mustCreateJob(t, db, newJob(ws, "last", "c1", chub.JobNotStarted))
	if j.Seq <= last {
		t.Fatalf("after a failed create: seq %d; want more than %d", j.Seq, last)
	}
	names = append(names, "last")
	got, err := db.ListJobs(ctx, chub.JobFilter{Workspace: &wsScope})
	if err != nil {
		t.Fatal(err)
	}
	if g := jobNames(got); !reflect.DeepEqual(g, names) {
		t.Fatalf("list order: got %v; want %v", g, names)
	}
}

func jobNames(js []*chub.Job) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.Name)
	}
	return out
}

func TestJobUpdateIsVersionChecked(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	mustCreateJob(t, db, newJob(ws, "j", "c1", chub.JobNotStarted))
	a, _ := db.GetJob(ctx, wsScope, "j")
	b, _ := db.GetJob(ctx, wsScope, "j")
	a.Status, b.Status = chub.JobQueued, chub.JobCanceled
	if err := db.UpdateJob(ctx, a); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	err := db.UpdateJob(ctx, b)
	if chub.ErrorKind(err) != chub.KindConflict {
		t.Fatalf("stale writer: got %v; want a conflict", err)
	}
	if b.Version != 1 {
		t.Fatalf("stale writer's version: got %d; want it left at 1", b.Version)
	}
	got, _ := db.GetJob(ctx, wsScope, "j")
	if got.Status != chub.JobQueued || got.Version != 2 {
		t.Fatalf("stored: status %s version %d; want Queued 2", got.Status, got.Version)
	}
	// Re-read and retry succeeds.
	got.Status = chub.JobCanceled
	if err := db.UpdateJob(ctx, got); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestListJobsFilters(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	other := &chub.Workspace{ID: "w2", Scope: otherScope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}
	if _, err := db.PutWorkspace(ctx, other); err != nil {
		t.Fatal(err)
	}
	type def struct {
		ws       *chub.Workspace
		name     string
		compute  string
		status   chub.JobStatus
		tags     map[string]string
		archived bool
	}
	for _, d := range []def{
		{ws, "q1", "c1", chub.JobQueued, map[string]string{"team": "a"}, false},
		{ws, "r1", "c1", chub.JobRunning, map[string]string{"Team": "b", "gpu": ""}, false},
		{ws, "d1", "c1", chub.JobCompleted, nil, false},
		{ws, "q2", "c2", chub.JobQueued, map[string]string{"team": "a=b"}, false},
		{ws, "x1", "c2", chub.JobFailed, map[string]string{"team": "a"}, true},
		{ws, "x2", "c1", chub.JobCancelRequested, nil, true},
		{other, "o1", "c3", chub.JobRunning, map[string]string{"team": "a"}, false},
	} {
		j := newJob(d.ws, d.name, d.compute, d.status)
		j.Spec.Tags, j.Archived = d.tags, d.archived
		mustCreateJob(t, db, j)
	}
	cases := []struct {
		name string
		f    chub.JobFilter
		want []string
	}{
		{"workspace, default view is active only", chub.JobFilter{Workspace: &wsScope}, []string{"q1", "r1", "d1", "q2"}},
		{"ActiveOnly", chub.JobFilter{Workspace: &wsScope, View: chub.JobViewActive}, []string{"q1", "r1", "d1", "q2"}},
		{"ArchivedOnly", chub.JobFilter{Workspace: &wsScope, View: chub.JobViewArchived}, []string{"x1", "x2"}},
		{"All", chub.JobFilter{Workspace: &wsScope, View: chub.JobViewAll}, []string{"q1", "r1", "d1", "q2", "x1", "x2"}},
		{"workspace in other case", chub.JobFilter{Workspace: &chub.WorkspaceScope{Subscription: "S", ResourceGroup: "RG", Workspace: "OTHER"}}, []string{"o1"}},
		{"every workspace", chub.JobFilter{View: chub.JobViewAll}, []string{"q1", "r1", "d1", "q2", "x1", "x2", "o1"}},
		{"tag name, any case", chub.JobFilter{Workspace: &wsScope, Tag: "TEAM"}, []string{"q1", "r1", "q2"}},
		{"tag name=value", chub.JobFilter{Workspace: &wsScope, Tag: "team=a"}, []string{"q1"}},
		{"tag value with =", chub.JobFilter{Workspace: &wsScope, Tag: "team=a=b"}, []string{"q2"}},
		{"tag with empty value", chub.JobFilter{Workspace: &wsScope, Tag: "gpu="}, []string{"r1"}},
		{"tag value is case-sensitive", chub.JobFilter{Workspace: &wsScope, Tag: "team=A"}, []string{}},
		{"tag nobody has", chub.JobFilter{Workspace: &wsScope, Tag: "nope"}, []string{}},
		{"tag, all views", chub.JobFilter{Workspace: &wsScope, Tag: "team=a", View: chub.JobViewAll}, []string{"q1", "x1"}},
		{"statuses", chub.JobFilter{Workspace: &wsScope, Statuses: []chub.JobStatus{chub.JobQueued, chub.JobRunning}}, []string{"q1", "r1", "q2"}},
		{"active statuses everywhere, all views", chub.JobFilter{Statuses: chub.ActiveJobStatuses, View: chub.JobViewAll}, []string{"q1", "r1", "q2", "x2", "o1"}},
		{"compute", chub.JobFilter{ComputeID: "c1", View: chub.JobViewAll}, []string{"q1", "r1", "d1", "x2"}},
		{"compute and status", chub.JobFilter{ComputeID: "c2", Statuses: []chub.JobStatus{chub.JobQueued}}, []string{"q2"}},
		{"compute of other workspace", chub.JobFilter{Workspace: &wsScope, ComputeID: "c3"}, []string{}},
		{"first page", chub.JobFilter{Workspace: &wsScope, View: chub.JobViewAll, Page: chub.Page{Limit: 4}}, []string{"q1", "r1", "d1", "q2"}},
		{"second page", chub.JobFilter{Workspace: &wsScope, View: chub.JobViewAll, Page: chub.Page{Skip: 4, Limit: 4}}, []string{"x1", "x2"}},
		{"skip without limit", chub.JobFilter{Workspace: &wsScope, Page: chub.Page{Skip: 3}}, []string{"q2"}},
		{"skip past the end", chub.JobFilter{Workspace: &wsScope, Page: chub.Page{Skip: 10, Limit: 2}}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := db.ListJobs(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if g := jobNames(got); !reflect.DeepEqual(g, c.want) {
				t.Fatalf("got %v; want %v", g, c.want)
			}
		})
	}
	if _, err := db.ListJobs(ctx, chub.JobFilter{View: "Bogus"}); chub.ErrorKind(err) != chub.KindInvalid {
		t.Fatalf("unknown view: got %v; want KindInvalid", err)
	}
}

func TestCountJobs(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	for i, d := range []struct {
		compute string
		status  chub.JobStatus
	}{
		{"c1", chub.JobRunning}, {"c1", chub.JobPreparing}, {"c1", chub.JobQueued}, {"c1", chub.JobCompleted},
		{"c2", chub.JobCancelRequested}, {"c2", chub.JobFailed}, {"c3", chub.JobCanceled},
	} {
		j := newJob(ws, "j"+strconv.Itoa(i), d.compute, d.status)
		j.Archived = d.status == chub.JobCancelRequested // archived jobs still count
		mustCreateJob(t, db, j)
	}
	busy := []chub.JobStatus{chub.JobPreparing, chub.JobRunning, chub.JobFinalizing, chub.JobCancelRequested}
	cases := []struct {
		name     string
		statuses []chub.JobStatus
		want     map[string]int
	}{
		{"busy", busy, map[string]int{"c1": 2, "c2": 1}},
		{"active", chub.ActiveJobStatuses, map[string]int{"c1": 3, "c2": 1}},
		{"terminal", []chub.JobStatus{chub.JobCompleted, chub.JobFailed, chub.JobCanceled}, map[string]int{"c1": 1, "c2": 1, "c3": 1}},
		{"none asked", nil, map[string]int{}},
		{"none in status", []chub.JobStatus{chub.JobFinalizing}, map[string]int{}},
	}
	for _, c := range cases {
		got, err := db.CountJobs(ctx, c.statuses)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v; want %v", c.name, got, c.want)
		}
	}
}

func newAsset(ws *chub.Workspace, kind chub.AssetKind, name, version string, at time.Time) *chub.AssetVersion {
	a := &chub.AssetVersion{Kind: kind, WorkspaceID: ws.ID, Scope: ws.Scope, Name: name, Version: version,
		Tags: map[string]string{"t": version}, Properties: map[string]string{"p": "1"},
		CreatedBy: chub.Principal{UserID: "u1", UserName: "alice"}, CreatedAt: at, ModifiedAt: at}
	if kind == chub.AssetCode {
		a.CodeURI = "https://chub/chub/v1/blobs/b-" + name + "-" + version
	} else {
		a.Image = "img-" + name
	}
	return a
}

func TestAssets(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	t0 := time.Now().UTC().Truncate(time.Millisecond)

	// Created in an order that differs from both name and version order.
	puts := []struct {
		kind          chub.AssetKind
		name, version string
	}{
		{chub.AssetCode, "train", "2"}, {chub.AssetCode, "eval", "1"}, {chub.AssetCode, "train", "1"},
		{chub.AssetEnvironment, "train", "1"}, {chub.AssetCode, "train", "10"},
	}
	for i, p := range puts {
		created, err := db.PutAsset(ctx, newAsset(ws, p.kind, p.name, p.version, t0.Add(time.Duration(i)*time.Second)))
		if err != nil || !created {
			t.Fatalf("put %s %s:%s: created %v, %v; want created", p.kind, p.name, p.version, created, err)
		}
	}

	// An update of the mutable fields, in another case, keeps id and creation.
	orig, err := db.GetAsset(ctx, chub.AssetCode, wsScope, "train", "2")
	if err != nil {
		t.Fatal(err)
	}
	upd := newAsset(ws, chub.AssetCode, "TRAIN", "2", t0.Add(time.Hour))
	upd.CodeURI = orig.CodeURI
	upd.Description, upd.Tags, upd.IsArchived = "new", map[string]string{"x": "y"}, true
	created, err := db.PutAsset(ctx, upd)
	if err != nil || created {
		t.Fatalf("update: created %v, %v; want an update", created, err)
	}
	got, err := db.GetAsset(ctx, chub.AssetCode, chub.WorkspaceScope{Subscription: "S", ResourceGroup: "RG", Workspace: "WS"}, "Train", "2")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != orig.ID || !got.CreatedAt.Equal(orig.CreatedAt) || got.Name != "train" || got.Description != "new" ||
		!reflect.DeepEqual(got.Tags, map[string]string{"x": "y"}) || !got.IsArchived || !got.ModifiedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after update: got %+v; want id %s, created %v, name train, the new description/tags/archived", got, orig.ID, orig.CreatedAt)
	}
	if upd.ID != orig.ID {
		t.Fatalf("update's id: got %s; want the stored %s", upd.ID, orig.ID)
	}

	immutable := []struct {
		name string
		a    *chub.AssetVersion
		code string
	}{
		{"code's codeUri", func() *chub.AssetVersion {
			a := newAsset(ws, chub.AssetCode, "train", "1", t0)
			a.CodeURI = "other"
			return a
		}(), "CodeVersionImmutable"},
		{"environment's image", func() *chub.AssetVersion {
			a := newAsset(ws, chub.AssetEnvironment, "train", "1", t0)
			a.Image = "other"
			return a
		}(), "EnvironmentVersionImmutable"},
	}
	for _, c := range immutable {
		_, err := db.PutAsset(ctx, c.a)
		var e *chub.Error
		if !errorAs(err, &e) || e.Kind != chub.KindConflict || e.Code != c.code {
			t.Errorf("changing a %s: got %v; want a conflict %s", c.name, err, c.code)
		}
	}

	lists := []struct {
		name string
		kind chub.AssetKind
		of   string
		page chub.Page
		want []string
	}{
		{"every code", chub.AssetCode, "", chub.Page{}, []string{"eval:1", "train:2", "train:1", "train:10"}},
		{"one code's versions", chub.AssetCode, "TRAIN", chub.Page{}, []string{"train:2", "train:1", "train:10"}},
		{"paged", chub.AssetCode, "train", chub.Page{Skip: 1, Limit: 1}, []string{"train:1"}},
		{"environments", chub.AssetEnvironment, "", chub.Page{}, []string{"train:1"}},
		{"unknown name", chub.AssetCode, "nope", chub.Page{}, []string{}},
	}
	for _, c := range lists {
		as, err := db.ListAssets(ctx, c.kind, wsScope, c.of, c.page)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		g := []string{}
		for _, a := range as {
			g = append(g, a.Name+":"+a.Version)
		}
		if !reflect.DeepEqual(g, c.want) {
			t.Errorf("list %s: got %v; want %v", c.name, g, c.want)
		}
	}
	if as, _ := db.ListAssets(ctx, chub.AssetCode, otherScope, "", chub.Page{}); len(as) != 0 {
		t.Errorf("list in a workspace that does not exist: got %d; want 0", len(as))
	}

	if err := db.DeleteAsset(ctx, chub.AssetCode, wsScope, "Train", "1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	notFound := []struct {
		name string
		err  error
	}{
		{"get deleted", func() error { _, err := db.GetAsset(ctx, chub.AssetCode, wsScope, "train", "1"); return err }()},
		{"delete again", db.DeleteAsset(ctx, chub.AssetCode, wsScope, "train", "1")},
		{"get the other kind", func() error { _, err := db.GetAsset(ctx, chub.AssetEnvironment, wsScope, "eval", "1"); return err }()},
		{"delete in other workspace", db.DeleteAsset(ctx, chub.AssetCode, otherScope, "eval", "1")},
	}
	for _, c := range notFound {
		if chub.ErrorKind(c.err) != chub.KindNotFound {
			t.Errorf("%s: got %v; want not found", c.name, c.err)
		}
	}
	// The environment of the same name and version is untouched.
	if _, err := db.GetAsset(ctx, chub.AssetEnvironment, wsScope, "train", "1"); err != nil {
		t.Errorf("environment train:1 after deleting code train:1: %v", err)
	}
}

func TestBlobsArePendingThenReadyOnce(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := &chub.Blob{ID: "b1", WorkspaceID: ws.ID, TokenHash: "hash", CreatedBy: chub.Principal{UserID: "u1"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateBlob(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetBlob(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("pending blob\n got %+v\nwant %+v", got, b)
	}
	if err := db.MarkBlobReady(ctx, "b1", 42, "abc"); err != nil {
		t.Fatalf("mark ready: %v", err)
	}
	got, _ = db.GetBlob(ctx, "b1")
	if !got.Ready || got.Size != 42 || got.SHA256 != "abc" || got.TokenHash != "" {
		t.Fatalf("ready blob: got %+v; want ready, size 42, sha abc, no token hash", got)
	}
	cases := []struct {
		name string
		err  error
		kind chub.Kind
	}{
		{"mark ready twice", db.MarkBlobReady(ctx, "b1", 1, "x"), chub.KindConflict},
		{"mark unknown", db.MarkBlobReady(ctx, "nope", 1, "x"), chub.KindNotFound},
		{"get unknown", func() error { _, err := db.GetBlob(ctx, "nope"); return err }(), chub.KindNotFound},
		{"create twice", db.CreateBlob(ctx, b), chub.KindConflict},
		{"create in unknown workspace", db.CreateBlob(ctx, &chub.Blob{ID: "b2", WorkspaceID: "nope", CreatedAt: now}), chub.KindNotFound},
	}
	for _, c := range cases {
		if chub.ErrorKind(c.err) != c.kind {
			t.Errorf("%s: got %v; want kind %d", c.name, c.err, c.kind)
		}
	}
	// The refused second upload left the first one's record alone.
	if got, _ := db.GetBlob(ctx, "b1"); got.Size != 42 || got.SHA256 != "abc" {
		t.Fatalf("after a refused second mark: got size %d sha %s; want 42 abc", got.Size, got.SHA256)
	}
}

func countRows(t *testing.T, db *DB, table, workspaceID string) int {
	t.Helper()
	var n int
	if err := db.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE workspace_id = ?`, workspaceID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeleteWorkspaceTakesItsJobsAssetsAndBlobs(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	_, ws := seed(t, db)
	keep := &chub.Workspace{ID: "w2", Scope: otherScope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}
	if _, err := db.PutWorkspace(ctx, keep); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*chub.Workspace{ws, keep} {
		mustCreateJob(t, db, newJob(w, "j", "gone", chub.JobCompleted))
		if _, err := db.PutAsset(ctx, newAsset(w, chub.AssetCode, "c", "1", time.Now())); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateBlob(ctx, &chub.Blob{ID: "b-" + w.ID, WorkspaceID: w.ID, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// With a compute it is refused, and nothing is deleted.
	c, op := newCompute("c1", "box", ws)
	if err := db.CreateCompute(ctx, c, op); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteWorkspace(ctx, wsScope); chub.ErrorKind(err) != chub.KindConflict {
		t.Fatalf("delete with a compute: got %v; want a conflict", err)
	}
	if n := countRows(t, db, "jobs", ws.ID); n != 1 {
		t.Fatalf("jobs after a refused delete: got %d; want 1", n)
	}
	if err := db.RemoveCompute(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteWorkspace(ctx, wsScope); err != nil {
		t.Fatalf("delete a workspace with jobs but no computes: %v", err)
	}
	for _, table := range []string{"jobs", "assets", "blobs"} {
		if n := countRows(t, db, table, ws.ID); n != 0 {
			t.Errorf("%s of the deleted workspace: got %d rows; want 0", table, n)
		}
		if n := countRows(t, db, table, keep.ID); n != 1 {
			t.Errorf("%s of the other workspace: got %d rows; want 1", table, n)
		}
	}
	if _, err := db.GetJobByID(ctx, "id-w1-j"); chub.ErrorKind(err) != chub.KindNotFound {
		t.Fatalf("job of the deleted workspace: got %v; want not found", err)
	}
	// A workspace of the same name made again starts empty.
	again := &chub.Workspace{ID: "w3", Scope: wsScope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}
	if _, err := db.PutWorkspace(ctx, again); err != nil {
		t.Fatal(err)
	}
	if js, _ := db.ListJobs(ctx, chub.JobFilter{Workspace: &wsScope, View: chub.JobViewAll}); len(js) != 0 {
		t.Fatalf("jobs of the new workspace: got %v; want none", jobNames(js))
	}
}

// TestJobsMigrationOnExistingDatabase builds a database with the
// migrations before 0020 only, fills it, then opens it with Open: 0020
// applies over it, keeps what was there, and jobs work.
func TestJobsMigrationOnExistingDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	applied := 0
	for _, name := range names {
		v, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if v >= 20 {
			continue
		}
		body, _ := migrations.ReadFile(name)
		if _, err := old.Exec(string(body)); err != nil {
			t.Fatalf("old migration %s: %v", name, err)
		}
		if _, err := old.Exec(`INSERT INTO schema_migrations VALUES (?, ?)`, v, fmtTime(time.Now())); err != nil {
			t.Fatal(err)
		}
		applied++
	}
	if applied == 0 {
		t.Fatal("no migration before 0020 was found")
	}
	if _, err := old.Exec(`INSERT INTO workspaces (id, subscription, resource_group, name, location, created_at, modified_at) VALUES ('w1', 's', 'rg', 'ws', 'local', ?, ?)`,
		fmtTime(time.Now()), fmtTime(time.Now())); err != nil {
		t.Fatal(err)
	}
	old.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("open a database from before jobs: %v", err)
	}
	defer db.Close()
	var v int
	if err := db.db.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil || v < 20 {
		t.Fatalf("schema version: got %d (%v); want at least 20", v, err)
	}
	ws, err := db.GetWorkspace(ctx, wsScope)
	if err != nil {
		t.Fatalf("the old workspace: %v", err)
	}
	j := mustCreateJob(t, db, newJob(ws, "after-migration", "c1", chub.JobNotStarted))
	if got, err := db.GetJob(ctx, wsScope, j.Name); err != nil || got.Seq != j.Seq {
		t.Fatalf("job after migration: %v, %v; want seq %d", got, err, j.Seq)
	}
	// Opening again applies nothing twice.
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	db2.Close()
}
