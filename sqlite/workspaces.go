package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/computehub/chub"
)

// PutWorkspace creates the workspace or updates its mutable fields.
func (d *DB) PutWorkspace(ctx context.Context, w *chub.Workspace) (bool, error) {
	tags, _ := json.Marshal(w.Tags)
	by, _ := json.Marshal(w.CreatedBy)
	created := false
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var id, createdAt string
		err := tx.QueryRowContext(ctx, `SELECT id, created_at FROM workspaces WHERE subscription = ? AND resource_group = ? AND name = ?`,
			w.Scope.Subscription, w.Scope.ResourceGroup, w.Scope.Workspace).Scan(&id, &createdAt)
		switch {
		case err == sql.ErrNoRows:
			created = true
			_, err = tx.ExecContext(ctx, `INSERT INTO workspaces (id, subscription, resource_group, name, location, description, friendly_name, tags, created_by, created_at, modified_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				w.ID, w.Scope.Subscription, w.Scope.ResourceGroup, w.Scope.Workspace, w.Location, w.Description, w.FriendlyName, string(tags), string(by), fmtTime(w.CreatedAt), fmtTime(w.ModifiedAt))
			return err
		case err != nil:
			return err
		}
		w.ID, w.CreatedAt = id, parseTime(createdAt)
		_, err = tx.ExecContext(ctx, `UPDATE workspaces SET description = ?, friendly_name = ?, tags = ?, modified_at = ? WHERE id = ?`,
			w.Description, w.FriendlyName, string(tags), fmtTime(w.ModifiedAt), id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("put workspace %s: %w", w.Scope.Workspace, err)
	}
	return created, nil
}

const wsCols = `id, subscription, resource_group, name, location, description, friendly_name, tags, created_by, created_at, modified_at`

func scanWorkspace(row interface{ Scan(...any) error }) (*chub.Workspace, error) {
	var w chub.Workspace
	var tags, by, created, modified string
	if err := row.Scan(&w.ID, &w.Scope.Subscription, &w.Scope.ResourceGroup, &w.Scope.Workspace, &w.Location, &w.Description, &w.FriendlyName, &tags, &by, &created, &modified); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(tags), &w.Tags)
	_ = json.Unmarshal([]byte(by), &w.CreatedBy)
	w.CreatedAt, w.ModifiedAt = parseTime(created), parseTime(modified)
	return &w, nil
}

// GetWorkspace finds a workspace by scope (names compared case-insensitively).
func (d *DB) GetWorkspace(ctx context.Context, s chub.WorkspaceScope) (*chub.Workspace, error) {
	w, err := scanWorkspace(d.db.QueryRowContext(ctx, `SELECT `+wsCols+` FROM workspaces WHERE subscription = ? AND resource_group = ? AND name = ?`,
		s.Subscription, s.ResourceGroup, s.Workspace))
	if err == sql.ErrNoRows {
		return nil, chub.NotFound("workspaceName", "workspace %q was not found in resource group %q", s.Workspace, s.ResourceGroup)
	}
	return w, err
}

// ListWorkspaces lists the workspaces of a subscription, optionally of one resource group.
func (d *DB) ListWorkspaces(ctx context.Context, sub, rg string) ([]*chub.Workspace, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+wsCols+` FROM workspaces WHERE subscription = ? AND (? = '' OR resource_group = ?) ORDER BY resource_group, name`, sub, rg, rg)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	defer rows.Close()
	var out []*chub.Workspace
	for rows.Next() {
		w, err := scanWorkspace(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWorkspace removes an empty workspace.
func (d *DB) DeleteWorkspace(ctx context.Context, s chub.WorkspaceScope) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM workspaces WHERE subscription = ? AND resource_group = ? AND name = ?`,
			s.Subscription, s.ResourceGroup, s.Workspace).Scan(&id)
		if err == sql.ErrNoRows {
			return chub.NotFound("workspaceName", "workspace %q was not found", s.Workspace)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM computes WHERE workspace_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return chub.Conflict("WorkspaceNotEmpty", "workspaceName", "workspace %q still has %d compute(s); delete them first (chub computetarget list -w %s)", s.Workspace, n, s.Workspace)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM workspaces WHERE id = ?`, id)
		return err
	})
}
