package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/computehub/chub"
)

// DeleteUser removes a user with their tokens and role assignments.
func (d *DB) DeleteUser(ctx context.Context, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return chub.NotFound("user", "user %s does not exist", id)
	}
	return nil
}

// SetPassword stores a user's password hash.
func (d *DB) SetPassword(ctx context.Context, userID, hash string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
	return err
}

// PasswordHash returns a user's password hash ("" when none is set).
func (d *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := d.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&h)
	return h, notFound(err, "user %s does not exist", userID)
}

// ListTokens lists a user's tokens, revoked ones included.
func (d *DB) ListTokens(ctx context.Context, userID string) ([]*chub.Token, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, user_id, name, hash, created_at, expires_at, revoked_at FROM tokens WHERE user_id = ? ORDER BY created_at`, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []*chub.Token
	for rows.Next() {
		var t chub.Token
		var created string
		var exp, revoked sql.NullString
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &created, &exp, &revoked); err != nil {
			return nil, err
		}
		t.CreatedAt = parseTime(created)
		if exp.Valid {
			e := parseTime(exp.String)
			t.ExpiresAt = &e
		}
		if revoked.Valid {
			r := parseTime(revoked.String)
			t.RevokedAt = &r
		}
		out = append(out, &t)
	}
	return out, rows.Err()
}

// RevokeToken revokes one of a user's tokens.
func (d *DB) RevokeToken(ctx context.Context, userID, tokenID string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL`, fmtTime(time.Now()), tokenID, userID)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return chub.NotFound("tokenId", "token %s of this user does not exist or is already revoked", tokenID)
	}
	return nil
}

// ListRoleDefinitions lists the custom roles.
func (d *DB) ListRoleDefinitions(ctx context.Context) ([]chub.RoleDefinition, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT body FROM role_definitions ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list role definitions: %w", err)
	}
	defer rows.Close()
	var out []chub.RoleDefinition
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var r chub.RoleDefinition
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutRoleDefinition creates or replaces a custom role. A replacement that
// would leave an assignment of the role at a scope it is no longer
// assignable at is refused, in the same transaction as the write, so that
// no assignment made meanwhile escapes the check.
func (d *DB) PutRoleDefinition(ctx context.Context, r chub.RoleDefinition) error {
	body, _ := json.Marshal(r)
	return d.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT scope FROM role_assignments WHERE role_definition_id = ? ORDER BY scope`, r.ID)
		if err != nil {
			return fmt.Errorf("role %s's assignments: %w", r.ID, err)
		}
		var outside string
		for rows.Next() {
			var scope string
			if err := rows.Scan(&scope); err != nil {
				rows.Close()
				return err
			}
			if outside == "" && !r.AssignableAt(scope) {
				outside = scope
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if outside != "" {
			return chub.Conflict("RoleDefinitionHasAssignments", "properties.assignableScopes",
				"role %q is assigned at %q, which the new assignable scopes (%s) do not cover; delete that assignment first or keep a scope that covers it",
				r.Name, outside, strings.Join(r.AssignableScopes, ", "))
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO role_definitions (id, name, body, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET name = excluded.name, body = excluded.body`, r.ID, r.Name, string(body), fmtTime(time.Now()))
		if isUnique(err) {
			return chub.Conflict("RoleDefinitionExists", "Name", "a role named %q already exists", r.Name)
		}
		return err
	})
}

// DeleteRoleDefinition removes an unassigned custom role.
func (d *DB) DeleteRoleDefinition(ctx context.Context, id string) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM role_assignments WHERE role_definition_id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return chub.Conflict("RoleDefinitionHasAssignments", "roleDefinitionId", "role %s is still assigned %d time(s); delete the assignments first", id, n)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM role_definitions WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return chub.NotFound("roleDefinitionId", "custom role %s does not exist", id)
		}
		return nil
	})
}

// ListRoleAssignments lists a principal's assignments ("" for all).
func (d *DB) ListRoleAssignments(ctx context.Context, principalID string) ([]chub.RoleAssignment, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, principal_id, role_definition_id, scope, created_at, created_by FROM role_assignments
		WHERE ? = '' OR principal_id = ? ORDER BY created_at, id`, principalID, principalID)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	defer rows.Close()
	var out []chub.RoleAssignment
	for rows.Next() {
		var a chub.RoleAssignment
		var created string
		if err := rows.Scan(&a.ID, &a.PrincipalID, &a.RoleDefinitionID, &a.Scope, &created, &a.CreatedBy); err != nil {
			return nil, err
		}
		a.CreatedAt = parseTime(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// CreateRoleAssignment stores an assignment; the same one twice is a
// conflict. A custom role must be assignable at the assignment's scope,
// checked in the same transaction as the write (see PutRoleDefinition).
func (d *DB) CreateRoleAssignment(ctx context.Context, a chub.RoleAssignment) error {
	return d.tx(ctx, func(tx *sql.Tx) error {
		var body string
		err := tx.QueryRowContext(ctx, `SELECT body FROM role_definitions WHERE id = ?`, a.RoleDefinitionID).Scan(&body)
		switch {
		case err == nil:
			var r chub.RoleDefinition
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				return fmt.Errorf("role %s: %w", a.RoleDefinitionID, err)
			}
			if !r.AssignableAt(a.Scope) {
				return chub.Invalid("InvalidScope", "scope", "role %q cannot be assigned at %s; its assignable scopes are %s", r.Name, a.Scope, strings.Join(r.AssignableScopes, ", "))
			}
		case err != sql.ErrNoRows: // no row: a built-in role, assignable everywhere
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO role_assignments (id, principal_id, role_definition_id, scope, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)`,
			a.ID, a.PrincipalID, a.RoleDefinitionID, a.Scope, fmtTime(a.CreatedAt), a.CreatedBy)
		if isUnique(err) {
			return chub.Conflict("RoleAssignmentExists", "properties", "the role assignment already exists")
		}
		if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
			return chub.Invalid("PrincipalNotFound", "properties.principalId", "principal %s does not exist", a.PrincipalID)
		}
		return err
	})
}

// DeleteRoleAssignment removes an assignment.
func (d *DB) DeleteRoleAssignment(ctx context.Context, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM role_assignments WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return chub.NotFound("roleAssignmentId", "role assignment %s does not exist", id)
	}
	return nil
}

// AppendAudit appends an entry to the audit log.
func (d *DB) AppendAudit(ctx context.Context, e *chub.AuditEntry) error {
	res, err := d.db.ExecContext(ctx, `INSERT INTO audit_log (time, principal_id, principal_name, action, resource, result, status, client_address, correlation_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, fmtTime(e.Time), e.PrincipalID, e.PrincipalName, e.Action, e.Resource, e.Result, e.Status, e.ClientAddress, e.CorrelationID, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	e.ID, _ = res.LastInsertId()
	return nil
}

// ListAudit lists audit entries, newest first.
func (d *DB) ListAudit(ctx context.Context, f chub.AuditFilter) ([]chub.AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	since := ""
	if !f.Since.IsZero() {
		since = fmtTime(f.Since)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, time, principal_id, principal_name, action, resource, result, status, client_address, correlation_id, detail
		FROM audit_log WHERE (? = '' OR time >= ?) AND (? = '' OR principal_id = ? OR principal_name = ? COLLATE NOCASE)
		AND (? = '' OR lower(resource) LIKE lower(?) || '%') ORDER BY id DESC LIMIT ?`,
		since, since, f.Principal, f.Principal, f.Principal, f.Resource, f.Resource, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []chub.AuditEntry
	for rows.Next() {
		var e chub.AuditEntry
		var t string
		if err := rows.Scan(&e.ID, &t, &e.PrincipalID, &e.PrincipalName, &e.Action, &e.Resource, &e.Result, &e.Status, &e.ClientAddress, &e.CorrelationID, &e.Detail); err != nil {
			return nil, err
		}
		e.Time = parseTime(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// ListQuotas lists the limits set for a subscription in a location.
func (d *DB) ListQuotas(ctx context.Context, subscription, location string) ([]chub.Quota, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT subscription, location, family, core_limit FROM quotas WHERE subscription = ? AND location = ? ORDER BY family`,
		subscription, location)
	if err != nil {
		return nil, fmt.Errorf("list quotas: %w", err)
	}
	defer rows.Close()
	var out []chub.Quota
	for rows.Next() {
		var q chub.Quota
		if err := rows.Scan(&q.Subscription, &q.Location, &q.Family, &q.Limit); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// SetQuota sets a limit.
func (d *DB) SetQuota(ctx context.Context, q chub.Quota) error {
	if q.Subscription == "" {
		return fmt.Errorf("set quota: no subscription")
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO quotas (subscription, location, family, core_limit) VALUES (?, ?, ?, ?)
		ON CONFLICT(subscription, location, family) DO UPDATE SET core_limit = excluded.core_limit`, q.Subscription, q.Location, q.Family, q.Limit)
	return err
}

// Usage sums the cores a subscription holds in a location.
func (d *DB) Usage(ctx context.Context, subscription, location string) (chub.Usage, error) {
	u := chub.Usage{ByFamily: map[string]int64{}}
	rows, err := d.db.QueryContext(ctx, `SELECT family, SUM(cores) FROM quota_ledger WHERE subscription = ? AND location = ? GROUP BY family`, subscription, location)
	if err != nil {
		return u, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		var n int64
		if err := rows.Scan(&f, &n); err != nil {
			return u, err
		}
		u.ByFamily[f] += n
		u.Total += n
	}
	return u, rows.Err()
}

// HoldQuota takes cores for a holder if the limits allow.
func (d *DB) HoldQuota(ctx context.Context, h chub.QuotaHold) error {
	return d.tx(ctx, func(tx *sql.Tx) error { return holdQuota(ctx, tx, h) })
}

// holdQuota checks the family and total limits of the holder's
// subscription in its region and records the hold, inside the caller's
// transaction (which holds SQLite's write lock, so concurrent holds are
// serialized and can never overshoot).
func holdQuota(ctx context.Context, tx *sql.Tx, h chub.QuotaHold) error {
	if h.Subscription == "" {
		return fmt.Errorf("hold quota for %s: no subscription", h.HolderID)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM quota_ledger WHERE holder_id = ?`, h.HolderID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	limit := func(family string, def int64) (int64, error) {
		var l int64
		err := tx.QueryRowContext(ctx, `SELECT core_limit FROM quotas WHERE subscription = ? AND location = ? AND family = ?`, h.Subscription, h.Location, family).Scan(&l)
		if err == sql.ErrNoRows {
			return def, nil
		}
		return l, err
	}
	var usedFamily, usedTotal int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(cores), 0) FROM quota_ledger WHERE subscription = ? AND location = ? AND family = ?`,
		h.Subscription, h.Location, h.Family).Scan(&usedFamily); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(cores), 0) FROM quota_ledger WHERE subscription = ? AND location = ?`,
		h.Subscription, h.Location).Scan(&usedTotal); err != nil {
		return err
	}
	famLimit, err := limit(h.Family, chub.DefaultFamilyQuota)
	if err != nil {
		return err
	}
	if usedFamily+h.Cores > famLimit {
		return chub.QuotaExceeded(h.Family, h.Cores, usedFamily, famLimit)
	}
	totalLimit, err := limit("", chub.DefaultRegionQuota)
	if err != nil {
		return err
	}
	if usedTotal+h.Cores > totalLimit {
		return chub.QuotaExceeded("", h.Cores, usedTotal, totalLimit)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO quota_ledger (holder_id, subscription, location, family, cores) VALUES (?, ?, ?, ?, ?)`,
		h.HolderID, h.Subscription, h.Location, h.Family, h.Cores)
	return err
}

// ReleaseQuota gives a holder's cores back.
func (d *DB) ReleaseQuota(ctx context.Context, holderID string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM quota_ledger WHERE holder_id = ?`, holderID)
	return err
}
