package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/computehub/chub"
)

const assetCols = `a.id, a.kind, a.workspace_id, w.subscription, w.resource_group, w.name, a.name, a.version, a.description, a.tags,
	a.properties, a.code_uri, a.image, a.archived, a.created_by, a.created_at, a.modified_at`

const assetFrom = ` FROM assets a JOIN workspaces w ON w.id = a.workspace_id `

func scanAsset(row interface{ Scan(...any) error }) (*chub.AssetVersion, error) {
	var a chub.AssetVersion
	var tags, props, by, created, modified string
	if err := row.Scan(&a.ID, &a.Kind, &a.WorkspaceID, &a.Scope.Subscription, &a.Scope.ResourceGroup, &a.Scope.Workspace, &a.Name, &a.Version,
		&a.Description, &tags, &props, &a.CodeURI, &a.Image, &a.IsArchived, &by, &created, &modified); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src string
		dst any
	}{{tags, &a.Tags}, {props, &a.Properties}, {by, &a.CreatedBy}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("decode %s %s version %s: %w", a.Kind, a.Name, a.Version, err)
		}
	}
	a.CreatedAt, a.ModifiedAt = parseTime(created), parseTime(modified)
	return &a, nil
}

func kindNoun(k chub.AssetKind) string {
	if k == chub.AssetEnvironment {
		return "environment"
	}
	return "code"
}

func assetNotFound(kind chub.AssetKind, s chub.WorkspaceScope, name, version string) error {
	return chub.Errorf(chub.KindNotFound, "UserError", "version", "%s %q version %q was not found in workspace %q", kindNoun(kind), name, version, s.Workspace)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PutAsset creates a version or updates the mutable fields of an
// existing one (description, tags, properties, isArchived); created says
// which. The content of a version never changes: a different codeUri (a
// code) or image (an environment) for an existing version is a
// KindConflict error. On return a holds the stored id and creation.
func (d *DB) PutAsset(ctx context.Context, a *chub.AssetVersion) (bool, error) {
	if a.Tags == nil {
		a.Tags = map[string]string{}
	}
	if a.Properties == nil {
		a.Properties = map[string]string{}
	}
	tags, _ := json.Marshal(a.Tags)
	props, _ := json.Marshal(a.Properties)
	by, _ := json.Marshal(a.CreatedBy)
	created := false
	err := d.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanAsset(tx.QueryRowContext(ctx, `SELECT `+assetCols+assetFrom+`WHERE a.kind = ? AND a.workspace_id = ? AND a.name = ? AND a.version = ?`,
			a.Kind, a.WorkspaceID, a.Name, a.Version))
		switch {
		case err == sql.ErrNoRows:
			created = true
			if a.ID == "" {
				a.ID = newID()
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO assets (id, kind, workspace_id, name, version, description, tags, properties, code_uri, image, archived,
				created_by, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.ID, a.Kind, a.WorkspaceID, a.Name, a.Version, a.Description, string(tags), string(props), a.CodeURI, a.Image, a.IsArchived,
				string(by), fmtTime(a.CreatedAt), fmtTime(a.ModifiedAt))
			if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
				return chub.NotFound("workspaceName", "workspace %q (id %s) was not found", a.Scope.Workspace, a.WorkspaceID)
			}
			return err
		case err != nil:
			return err
		}
		if a.Kind == chub.AssetCode && old.CodeURI != a.CodeURI {
			return chub.Conflict("CodeVersionImmutable", "properties.codeUri",
				"code %q version %q already has codeUri %s; a version's content cannot change: create a new version", a.Name, a.Version, old.CodeURI)
		}
		if a.Kind == chub.AssetEnvironment && old.Image != a.Image {
			return chub.Conflict("EnvironmentVersionImmutable", "properties.image",
				"environment %q version %q already has image %q; a version's content cannot change: create a new version", a.Name, a.Version, old.Image)
		}
		a.ID, a.Name, a.Version, a.CreatedBy, a.CreatedAt = old.ID, old.Name, old.Version, old.CreatedBy, old.CreatedAt
		_, err = tx.ExecContext(ctx, `UPDATE assets SET description = ?, tags = ?, properties = ?, archived = ?, modified_at = ? WHERE id = ?`,
			a.Description, string(tags), string(props), a.IsArchived, fmtTime(a.ModifiedAt), old.ID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("put %s %s version %s: %w", kindNoun(a.Kind), a.Name, a.Version, err)
	}
	return created, nil
}

// GetAsset finds one version (names and versions compared case-insensitively).
func (d *DB) GetAsset(ctx context.Context, kind chub.AssetKind, s chub.WorkspaceScope, name, version string) (*chub.AssetVersion, error) {
	a, err := scanAsset(d.db.QueryRowContext(ctx, `SELECT `+assetCols+assetFrom+
		`WHERE w.subscription = ? AND w.resource_group = ? AND w.name = ? AND a.kind = ? AND a.name = ? AND a.version = ?`,
		s.Subscription, s.ResourceGroup, s.Workspace, kind, name, version))
	if err == sql.ErrNoRows {
		return nil, assetNotFound(kind, s, name, version)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s version %s: %w", kindNoun(kind), name, version, err)
	}
	return a, nil
}

// ListAssets lists the versions of one asset, oldest first, or when name
// is "" every version of every asset of the kind, by name then age.
func (d *DB) ListAssets(ctx context.Context, kind chub.AssetKind, s chub.WorkspaceScope, name string, p chub.Page) ([]*chub.AssetVersion, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	q := `SELECT ` + assetCols + assetFrom + `WHERE w.subscription = ? AND w.resource_group = ? AND w.name = ? AND a.kind = ?`
	args := []any{s.Subscription, s.ResourceGroup, s.Workspace, kind}
	if name != "" {
		q += ` AND a.name = ?`
		args = append(args, name)
	}
	q += ` ORDER BY a.name, a.created_at, a.version LIMIT ? OFFSET ?`
	args = append(args, limit, max(p.Skip, 0))
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", kindNoun(kind), err)
	}
	defer rows.Close()
	var out []*chub.AssetVersion
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %ss: %w", kindNoun(kind), err)
	}
	return out, nil
}

// DeleteAsset removes one version.
func (d *DB) DeleteAsset(ctx context.Context, kind chub.AssetKind, s chub.WorkspaceScope, name, version string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM assets WHERE kind = ? AND name = ? AND version = ? AND workspace_id =
		(SELECT id FROM workspaces WHERE subscription = ? AND resource_group = ? AND name = ?)`,
		kind, name, version, s.Subscription, s.ResourceGroup, s.Workspace)
	if err != nil {
		return fmt.Errorf("delete %s %s version %s: %w", kindNoun(kind), name, version, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return assetNotFound(kind, s, name, version)
	}
	return nil
}

// CreateBlob records a pending blob.
func (d *DB) CreateBlob(ctx context.Context, b *chub.Blob) error {
	by, _ := json.Marshal(b.CreatedBy)
	_, err := d.db.ExecContext(ctx, `INSERT INTO blobs (id, workspace_id, token_hash, ready, size, sha256, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.ID, b.WorkspaceID, b.TokenHash, b.Ready, b.Size, b.SHA256, string(by), fmtTime(b.CreatedAt), fmtOptTime(b.ExpiresAt))
	switch {
	case isUnique(err):
		return fmt.Errorf("create blob %s: %w", b.ID, chub.Conflict("BlobExists", "id", "blob %s already exists", b.ID))
	case err != nil && strings.Contains(err.Error(), "FOREIGN KEY"):
		return fmt.Errorf("create blob %s: %w", b.ID, chub.NotFound("workspaceName", "workspace %s was not found", b.WorkspaceID))
	case err != nil:
		return fmt.Errorf("create blob %s: %w", b.ID, err)
	}
	return nil
}

func blobNotFound(id string) error {
	return chub.NotFound("blobId", "blob %s was not found; start a new upload (startPendingUpload)", id)
}

// GetBlob finds a blob by id.
func (d *DB) GetBlob(ctx context.Context, id string) (*chub.Blob, error) {
	var b chub.Blob
	var by, created string
	var expires sql.NullString
	err := d.db.QueryRowContext(ctx, `SELECT id, workspace_id, token_hash, ready, size, sha256, created_by, created_at, expires_at FROM blobs WHERE id = ?`, id).
		Scan(&b.ID, &b.WorkspaceID, &b.TokenHash, &b.Ready, &b.Size, &b.SHA256, &by, &created, &expires)
	if err == sql.ErrNoRows {
		return nil, blobNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(by), &b.CreatedBy); err != nil {
		return nil, fmt.Errorf("decode blob %s: %w", id, err)
	}
	b.CreatedAt, b.ExpiresAt = parseTime(created), parseOptTime(expires)
	return &b, nil
}

// MarkBlobReady records that a pending blob's content arrived and forgets
// its upload secret. A blob already ready is a KindConflict error: its
// content is uploaded once. (Expiry is the caller's to check before it
// accepts the content.)
func (d *DB) MarkBlobReady(ctx context.Context, id string, size int64, sum string) error {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE blobs SET ready = 1, size = ?, sha256 = ?, token_hash = '' WHERE id = ? AND ready = 0`, size, sum, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM blobs WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return blobNotFound(id)
		}
		return chub.Conflict("BlobAlreadyUploaded", "id", "blob %s was already uploaded; a blob's content is written once: start a new upload", id)
	})
	if err != nil {
		return fmt.Errorf("mark blob %s ready: %w", id, err)
	}
	return nil
}
