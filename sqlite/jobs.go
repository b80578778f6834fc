package sqlite

import (
	"context"

	"github.com/computehub/chub"
)

// Placeholders until the jobs tables land.

func notYet() error {
	return chub.Errorf(chub.KindInternal, "NotImplemented", "", "jobs are not stored yet")
}

func (d *DB) CreateJob(ctx context.Context, j *chub.Job) error { return notYet() }
func (d *DB) GetJob(ctx context.Context, s chub.WorkspaceScope, name string) (*chub.Job, error) {
	return nil, notYet()
}
func (d *DB) GetJobByID(ctx context.Context, id string) (*chub.Job, error) { return nil, notYet() }
func (d *DB) UpdateJob(ctx context.Context, j *chub.Job) error             { return notYet() }
func (d *DB) ListJobs(ctx context.Context, f chub.JobFilter) ([]*chub.Job, error) {
	return nil, notYet()
}
func (d *DB) CountJobs(ctx context.Context, statuses []chub.JobStatus) (map[string]int, error) {
	return nil, notYet()
}
func (d *DB) PutAsset(ctx context.Context, a *chub.AssetVersion) (bool, error) {
	return false, notYet()
}
func (d *DB) GetAsset(ctx context.Context, kind chub.AssetKind, s chub.WorkspaceScope, name, version string) (*chub.AssetVersion, error) {
	return nil, notYet()
}
func (d *DB) ListAssets(ctx context.Context, kind chub.AssetKind, s chub.WorkspaceScope, name string, p chub.Page) ([]*chub.AssetVersion, error) {
	return nil, notYet()
}
func (d *DB) DeleteAsset(ctx context.Context, kind chub.AssetKind, s chub.WorkspaceScope, name, version string) error {
	return notYet()
}
func (d *DB) CreateBlob(ctx context.Context, b *chub.Blob) error         { return notYet() }
func (d *DB) GetBlob(ctx context.Context, id string) (*chub.Blob, error) { return nil, notYet() }
func (d *DB) MarkBlobReady(ctx context.Context, id string, size int64, sum string) error {
	return notYet()
}
