package lifecycle_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
	"github.com/computehub/chub/sqlite"
)

// canceled records the calls of the CancelJobs hook.
type canceled struct {
	calls []string // "computeID by reason"
}

func (c *canceled) hook(_ context.Context, computeID string, by chub.Principal, reason string) error {
	c.calls = append(c.calls, computeID+" "+by.UserID+" "+reason)
	return nil
}

// TestStopAndDeleteCancelJobs: a stop cancels the instance's jobs only
// when asked to and only when the stop is accepted; a delete always does.
func TestStopAndDeleteCancelJobs(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u := &chub.User{ID: "u1", TenantID: "t", Name: "alice", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	scope := chub.WorkspaceScope{Subscription: "s", ResourceGroup: "rg", Workspace: "ws"}
	if _, err := db.PutWorkspace(ctx, &chub.Workspace{ID: "w1", Scope: scope, Location: "local", CreatedAt: time.Now(), ModifiedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cat := chub.BuiltinCatalog()
	var rec canceled
	life := &lifecycle.Service{Store: db, Catalog: func() *chub.Catalog { return cat }, Region: "local", CancelJobs: rec.hook}
	c, _, _, err := life.CreateOrUpdate(ctx, u, scope, "box", lifecycle.CreateRequest{Settings: chub.InstanceSettings{VMSize: "Standard_DS1_v2"}})
	if err != nil {
		t.Fatal(err)
	}
	running := func() {
		t.Helper()
		c, err := db.GetComputeByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		c.State, c.ActiveOperation = chub.StateRunning, ""
		if err := db.UpdateCompute(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	// A stop refused (the create is still in flight) cancels nothing.
	if _, _, err := life.Stop(ctx, u, scope, "box", true); chub.ErrorKind(err) != chub.KindConflict {
		t.Fatalf("stop during the create: %v; want a conflict", err)
	}
	running()
	steps := []struct {
		name      string
		stop      func() error
		wantCalls []string
		wantState chub.State
	}{
		{"Act stop", func() error { _, _, err := life.Act(ctx, u, scope, "box", chub.OpStop); return err }, nil, chub.StateStopping},
		{"Stop without cancelJobs", func() error { _, _, err := life.Stop(ctx, u, scope, "box", false); return err }, nil, chub.StateStopping},
		{"Stop with cancelJobs", func() error { _, _, err := life.Stop(ctx, u, scope, "box", true); return err },
			[]string{c.ID + " u1 the instance was stopped with cancelJobs"}, chub.StateStopping},
	}
	for _, s := range steps {
		rec.calls = nil
		if err := s.stop(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !slices.Equal(rec.calls, s.wantCalls) {
			t.Errorf("%s: CancelJobs calls %q; want %q", s.name, rec.calls, s.wantCalls)
		}
		got, err := db.GetComputeByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != s.wantState || got.Desired != chub.DesiredStopped {
			t.Errorf("%s: state %s desired %s; want %s, Stopped", s.name, got.State, got.Desired, s.wantState)
		}
		running()
	}
	rec.calls = nil
	if _, err := life.Delete(ctx, u, scope, "box"); err != nil {
		t.Fatal(err)
	}
	if want := []string{c.ID + " u1 the instance was deleted"}; !slices.Equal(rec.calls, want) {
		t.Errorf("delete: CancelJobs calls %q; want %q", rec.calls, want)
	}
}
