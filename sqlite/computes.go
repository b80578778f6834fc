package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/computehub/chub"
)

const computeCols = `c.id, c.workspace_id, w.subscription, w.resource_group, w.name, c.name, c.location, c.description, c.tags,
	c.settings, c.created_by, c.created_at, c.modified_by, c.modified_at, c.desired, c.restart_pending, c.active_operation,
	c.state, c.last_operation, c.errors, c.runtime_state, c.version, c.observed, c.ssh_port`

const computeFrom = ` FROM computes c JOIN workspaces w ON w.id = c.workspace_id `

func scanCompute(row interface{ Scan(...any) error }) (*chub.Compute, error) {
	var c chub.Compute
	var tags, settings, createdBy, createdAt, modifiedBy, modifiedAt, errs string
	var lastOp sql.NullString
	var observed string
	var sshPort sql.NullInt64
	if err := row.Scan(&c.ID, &c.WorkspaceID, &c.Scope.Subscription, &c.Scope.ResourceGroup, &c.Scope.Workspace, &c.Name, &c.Location,
		&c.Description, &tags, &settings, &createdBy, &createdAt, &modifiedBy, &modifiedAt, &c.Desired, &c.RestartPending,
		&c.ActiveOperation, &c.State, &lastOp, &errs, &c.RuntimeState, &c.Version, &observed, &sshPort); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src string
		dst any
	}{{tags, &c.Tags}, {settings, &c.Settings}, {createdBy, &c.CreatedBy}, {modifiedBy, &c.ModifiedBy}, {errs, &c.Errors}, {observed, &c.Observed}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("decode compute %s: %w", c.Name, err)
		}
	}
	if lastOp.Valid {
		c.LastOperation = &chub.LastOperation{}
		if err := json.Unmarshal([]byte(lastOp.String), c.LastOperation); err != nil {
			return nil, fmt.Errorf("decode compute %s: %w", c.Name, err)
		}
	}
	c.CreatedAt, c.ModifiedAt = parseTime(createdAt), parseTime(modifiedAt)
	c.SSHPort = int(sshPort.Int64)
	return &c, nil
}

// computeValues are the JSON-encoded columns of a compute.
type computeValues struct {
	tags, settings, createdBy, modifiedBy, errs, observed string
	lastOp, sshPort                                       any
}

func encodeCompute(c *chub.Compute) (computeValues, error) {
	var v computeValues
	enc := func(x any) string {
		b, _ := json.Marshal(x)
		return string(b)
	}
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	if c.Errors == nil {
		c.Errors = []chub.ErrorDetail{}
	}
	v.tags, v.settings, v.createdBy, v.modifiedBy, v.errs = enc(c.Tags), enc(c.Settings), enc(c.CreatedBy), enc(c.ModifiedBy), enc(c.Errors)
	if c.LastOperation != nil {
		v.lastOp = enc(c.LastOperation)
	}
	v.observed = enc(c.Observed)
	if c.SSHPort != 0 {
		v.sshPort = c.SSHPort
	}
	return v, nil
}

// CreateCompute inserts a compute and its create operation atomically.
func (d *DB) CreateCompute(ctx context.Context, c *chub.Compute, op *chub.Operation) error {
	v, err := encodeCompute(c)
	if err != nil {
		return err
	}
	c.Version = 1
	err = d.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO computes (id, workspace_id, name, location, description, tags, settings, created_by, created_at,
			modified_by, modified_at, desired, restart_pending, active_operation, state, last_operation, errors, runtime_state, version, observed, ssh_port)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.WorkspaceID, c.Name, c.Location, c.Description, v.tags, v.settings, v.createdBy, fmtTime(c.CreatedAt),
			v.modifiedBy, fmtTime(c.ModifiedAt), c.Desired, c.RestartPending, c.ActiveOperation, c.State, v.lastOp, v.errs, c.RuntimeState, c.Version, v.observed, v.sshPort)
		if isUnique(err) && strings.Contains(err.Error(), "ssh_port") {
			return chub.Conflict("SshPortTaken", "sshSettings.sshPort", "SSH port %d is taken by another instance", c.SSHPort)
		}
		if isUnique(err) {
			return chub.Conflict("ComputeNameNotAvailable", "name", "a compute named %q already exists in region %q; compute names are unique across all workspaces of a region", c.Name, c.Location)
		}
		if err != nil {
			return err
		}
		if c.Quota != nil {
			if err := holdQuota(ctx, tx, *c.Quota); err != nil {
				return err
			}
		}
		return upsertOps(ctx, tx, op)
	})
	if err != nil {
		c.Version = 0
		return fmt.Errorf("create compute %s: %w", c.Name, err)
	}
	return nil
}

// GetCompute finds a compute by workspace and name (case-insensitive).
func (d *DB) GetCompute(ctx context.Context, s chub.WorkspaceScope, name string) (*chub.Compute, error) {
	c, err := scanCompute(d.db.QueryRowContext(ctx, `SELECT `+computeCols+computeFrom+
		`WHERE w.subscription = ? AND w.resource_group = ? AND w.name = ? AND c.name = ?`, s.Subscription, s.ResourceGroup, s.Workspace, name))
	if err == sql.ErrNoRows {
		return nil, chub.NotFound("computeName", "compute %q was not found in workspace %q", name, s.Workspace)
	}
	return c, err
}

// GetComputeByID finds a compute by id.
func (d *DB) GetComputeByID(ctx context.Context, id string) (*chub.Compute, error) {
	c, err := scanCompute(d.db.QueryRowContext(ctx, `SELECT `+computeCols+computeFrom+`WHERE c.id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, chub.NotFound("computeId", "compute %s was not found", id)
	}
	return c, err
}

// ComputeNameTaken reports whether the name is used anywhere in the region.
func (d *DB) ComputeNameTaken(ctx context.Context, name string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM computes WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

// ListComputes lists a workspace's computes, oldest first.
func (d *DB) ListComputes(ctx context.Context, s chub.WorkspaceScope, p chub.Page) ([]*chub.Compute, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = -1
	}
	return d.listComputes(ctx, `WHERE w.subscription = ? AND w.resource_group = ? AND w.name = ? ORDER BY c.created_at, c.name LIMIT ? OFFSET ?`,
		s.Subscription, s.ResourceGroup, s.Workspace, limit, p.Skip)
}

// ListAllComputes lists every compute.
func (d *DB) ListAllComputes(ctx context.Context) ([]*chub.Compute, error) {
	return d.listComputes(ctx, `ORDER BY c.created_at`)
}

func (d *DB) listComputes(ctx context.Context, where string, args ...any) ([]*chub.Compute, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+computeCols+computeFrom+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list computes: %w", err)
	}
	defer rows.Close()
	var out []*chub.Compute
	for rows.Next() {
		c, err := scanCompute(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func staleWrite(c *chub.Compute) error {
	return chub.Conflict("ConcurrentUpdate", "name", "compute %q was changed by another request; retry", c.Name)
}

// UpdateCompute writes c if nobody else wrote it since it was read, and
// records ops in the same transaction.
func (d *DB) UpdateCompute(ctx context.Context, c *chub.Compute, ops ...*chub.Operation) error {
	v, err := encodeCompute(c)
	if err != nil {
		return err
	}
	err = d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE computes SET description = ?, tags = ?, settings = ?, modified_by = ?, modified_at = ?,
			desired = ?, restart_pending = ?, active_operation = ?, state = ?, last_operation = ?, errors = ?, runtime_state = ?,
			observed = ?, ssh_port = ?, version = version + 1
			WHERE id = ? AND version = ?`,
			c.Description, v.tags, v.settings, v.modifiedBy, fmtTime(c.ModifiedAt), c.Desired, c.RestartPending, c.ActiveOperation,
			c.State, v.lastOp, v.errs, c.RuntimeState, v.observed, v.sshPort, c.ID, c.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return staleWrite(c)
		}
		return upsertOps(ctx, tx, ops...)
	})
	if err != nil {
		return fmt.Errorf("update compute %s: %w", c.Name, err)
	}
	c.Version++
	return nil
}

// RemoveCompute deletes c's row if unchanged since read, recording ops.
func (d *DB) RemoveCompute(ctx context.Context, c *chub.Compute, ops ...*chub.Operation) error {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM computes WHERE id = ? AND version = ?`, c.ID, c.Version)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return staleWrite(c)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM quota_ledger WHERE holder_id = ?`, c.ID); err != nil {
			return err
		}
		return upsertOps(ctx, tx, ops...)
	})
	if err != nil {
		return fmt.Errorf("remove compute %s: %w", c.Name, err)
	}
	return nil
}

func upsertOps(ctx context.Context, tx *sql.Tx, ops ...*chub.Operation) error {
	for _, op := range ops {
		if op == nil {
			continue
		}
		var opErr any
		if op.Error != nil {
			b, _ := json.Marshal(op.Error)
			opErr = string(b)
		}
		by, _ := json.Marshal(op.RequestedBy)
		_, err := tx.ExecContext(ctx, `INSERT INTO operations (id, compute_id, resource_id, location, name, trigger_by, status, error, start_time, end_time, requested_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET status = excluded.status, error = excluded.error, end_time = excluded.end_time`,
			op.ID, op.ComputeID, op.ResourceID, op.Location, op.Name, op.Trigger, op.Status, opErr, fmtTime(op.StartTime), fmtOptTime(op.EndTime), string(by))
		if err != nil {
			return fmt.Errorf("record operation %s: %w", op.ID, err)
		}
	}
	return nil
}

// GetOperation finds an operation by id.
func (d *DB) GetOperation(ctx context.Context, id string) (*chub.Operation, error) {
	var op chub.Operation
	var opErr, end sql.NullString
	var start, by string
	err := d.db.QueryRowContext(ctx, `SELECT id, compute_id, resource_id, location, name, trigger_by, status, error, start_time, end_time, requested_by
		FROM operations WHERE id = ?`, id).Scan(&op.ID, &op.ComputeID, &op.ResourceID, &op.Location, &op.Name, &op.Trigger, &op.Status, &opErr, &start, &end, &by)
	if err == sql.ErrNoRows {
		return nil, chub.NotFound("operationId", "operation %s was not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get operation %s: %w", id, err)
	}
	if opErr.Valid {
		op.Error = &chub.ErrorDetail{}
		_ = json.Unmarshal([]byte(opErr.String), op.Error)
	}
	_ = json.Unmarshal([]byte(by), &op.RequestedBy)
	op.StartTime, op.EndTime = parseTime(start), parseOptTime(end)
	return &op, nil
}
