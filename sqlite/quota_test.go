package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computehub/chub"
)

// TestQuotaMigrationKeepsLimitsAndHolds opens a store made before quotas
// were per subscription: the region-wide limits apply to every
// subscription with a workspace and to the default one, and each held
// core is charged to its instance's subscription.
func TestQuotaMigrationKeepsLimitsAndHolds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chub.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`)
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	sort.Strings(names)
	for _, name := range names {
		v, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migrations/"), "_", 2)[0])
		if v >= 15 {
			break
		}
		body, _ := migrations.ReadFile(name)
		exec(string(body))
		exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, fmtTime(time.Now()))
	}
	now := fmtTime(time.Now())
	exec(`INSERT INTO workspaces (id, subscription, resource_group, name, location, created_at, modified_at) VALUES ('w1', 'sub-a', 'rg', 'ws', 'local', ?, ?)`, now, now)
	exec(`INSERT INTO quotas (location, family, core_limit) VALUES ('local', '', 12), ('local', 'fam', 6)`)
	exec(`INSERT INTO computes (id, workspace_id, name, location, settings, created_by, created_at, modified_by, modified_at, desired, state, version)
		VALUES ('c1', 'w1', 'box', 'local', '{}', '{}', ?, '{}', ?, 'Running', 'Running', 1)`, now, now)
	exec(`INSERT INTO quota_ledger (holder_id, location, family, cores) VALUES ('c1', 'local', 'fam', 2), ('cluster', 'local', 'fam', 3)`)
	old.Close()

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, sub := range []string{"sub-a", "00000000-0000-0000-0000-000000000000"} {
		qs, err := db.ListQuotas(ctx, sub, "local")
		if err != nil || len(qs) != 2 || qs[0].Limit != 12 || qs[1].Limit != 6 {
			t.Errorf("quotas of %s after the migration: %+v, %v; want the total 12 and fam 6", sub, qs, err)
		}
	}
	if qs, _ := db.ListQuotas(ctx, "sub-b", "local"); len(qs) != 0 {
		t.Errorf("a subscription without workspaces got limits: %+v", qs)
	}
	// Each hold is charged to its instance's subscription, the others to the default one.
	if u, _ := db.Usage(ctx, "sub-a", "local"); u.Total != 2 {
		t.Errorf("sub-a's usage after the migration: %+v; want its instance's 2 cores", u)
	}
	if u, _ := db.Usage(ctx, "00000000-0000-0000-0000-000000000000", "local"); u.Total != 3 {
		t.Errorf("the default subscription's usage after the migration: %+v; want 3 cores", u)
	}
	// The ledger counts per subscription from now on.
	if err := db.HoldQuota(ctx, chub.QuotaHold{HolderID: "i1", Subscription: "SUB-A", Location: "local", Family: "fam", Cores: 4}); err != nil {
		t.Fatal(err)
	}
	if err := db.HoldQuota(ctx, chub.QuotaHold{HolderID: "i2", Subscription: "sub-a", Location: "local", Family: "fam", Cores: 1}); chub.ErrorKind(err) != chub.KindConflict {
		t.Errorf("a hold over sub-a's family limit: %v; want QuotaExceeded", err)
	}
	if u, _ := db.Usage(ctx, "00000000-0000-0000-0000-000000000000", "local"); u.Total != 3 {
		t.Errorf("the default subscription's usage: %+v; want still 3", u)
	}
}
