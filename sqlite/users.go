package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/computehub/chub"
)

// CreateUser inserts a user; a taken name is a conflict.
func (d *DB) CreateUser(ctx context.Context, u *chub.User) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO users (id, tenant_id, name, display_name, admin, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.TenantID, u.Name, u.DisplayName, u.Admin, fmtTime(u.CreatedAt))
	if isUnique(err) {
		return chub.Conflict("UserExists", "name", "a user named %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Name, err)
	}
	return nil
}

const userCols = `id, tenant_id, name, display_name, admin, created_at`

func scanUser(row interface{ Scan(...any) error }) (*chub.User, error) {
	var u chub.User
	var created string
	if err := row.Scan(&u.ID, &u.TenantID, &u.Name, &u.DisplayName, &u.Admin, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = parseTime(created)
	return &u, nil
}

// UserByName finds a user by login name (case-insensitive).
func (d *DB) UserByName(ctx context.Context, name string) (*chub.User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	return u, notFound(err, "user %q does not exist", name)
}

// UserByID finds a user by object id.
func (d *DB) UserByID(ctx context.Context, id string) (*chub.User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, notFound(err, "user with object id %q does not exist", id)
}

// ListUsers lists every user by name.
func (d *DB) ListUsers(ctx context.Context) ([]*chub.User, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []*chub.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CreateToken stores a token's hash.
func (d *DB) CreateToken(ctx context.Context, t *chub.Token) error {
	var exp any
	if t.ExpiresAt != nil {
		exp = fmtTime(*t.ExpiresAt)
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO tokens (id, user_id, name, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.Name, t.Hash, fmtTime(t.CreatedAt), exp)
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

// Authenticate returns the user holding an unexpired token with this hash.
func (d *DB) Authenticate(ctx context.Context, hash string) (*chub.User, error) {
	var exp sql.NullString
	row := d.db.QueryRowContext(ctx, `SELECT u.id, u.tenant_id, u.name, u.display_name, u.admin, u.created_at, t.expires_at
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ? AND t.revoked_at IS NULL`, hash)
	var u chub.User
	var created string
	err := row.Scan(&u.ID, &u.TenantID, &u.Name, &u.DisplayName, &u.Admin, &created, &exp)
	if err == sql.ErrNoRows {
		return nil, chub.Errorf(chub.KindUnauthenticated, "InvalidAuthenticationToken", "", "the access token is invalid")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if exp.Valid && parseTime(exp.String).Before(time.Now()) {
		return nil, chub.Errorf(chub.KindUnauthenticated, "ExpiredAuthenticationToken", "", "the access token has expired; create a new one with 'chub token create'")
	}
	u.CreatedAt = parseTime(created)
	return &u, nil
}
