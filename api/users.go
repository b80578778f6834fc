package api

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/computehub/chub"
	"github.com/computehub/chub/lifecycle"
)

// DefaultTenant is the tenant id of users created without one.
const DefaultTenant = "00000000-0000-0000-0000-000000000001"

type userJSON struct {
	ObjectID    string    `json:"objectId"`
	TenantID    string    `json:"tenantId"`
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName"`
	Admin       bool      `json:"admin"`
	CreatedAt   time.Time `json:"createdAt"`
}

func toUserJSON(u *chub.User) userJSON {
	return userJSON{ObjectID: u.ID, TenantID: u.TenantID, Name: u.Name, DisplayName: u.DisplayName, Admin: u.Admin, CreatedAt: u.CreatedAt}
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, _ params) error {
	writeJSON(w, http.StatusOK, toUserJSON(caller(r)))
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := s.authorize(r, chub.ActionUsersManage, "/chub/v1/users"); err != nil {
		return err
	}
	us, err := s.cfg.Store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	out := []userJSON{}
	for _, u := range us {
		out = append(out, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

// NewUser validates and builds a user; shared with the server's bootstrap.
func NewUser(name, displayName, tenant string, admin bool) (*chub.User, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " /\\:@\t\n") {
		return nil, chub.Invalid("InvalidUserName", "name", "user name %q must be 1 to 64 characters without spaces, slashes, colons or '@'", name)
	}
	if tenant == "" {
		tenant = DefaultTenant
	}
	if displayName == "" {
		displayName = name
	}
	return &chub.User{ID: lifecycle.NewID(), TenantID: tenant, Name: name, DisplayName: displayName, Admin: admin, CreatedAt: time.Now().UTC()}, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := s.authorize(r, chub.ActionUsersManage, "/chub/v1/users"); err != nil {
		return err
	}
	var body struct {
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
		TenantID    string `json:"tenantId"`
		Admin       bool   `json:"admin"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	u, err := NewUser(body.Name, body.DisplayName, body.TenantID, body.Admin)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.CreateUser(r.Context(), u); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
	return nil
}

// NewToken makes a token secret and its stored record.
func NewToken(userID, name string, ttl time.Duration) (string, *chub.Token) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	secret := "chub_" + base64.RawURLEncoding.EncodeToString(b[:])
	t := &chub.Token{ID: lifecycle.NewID(), UserID: userID, Name: name, Hash: hashToken(secret), CreatedAt: time.Now().UTC()}
	if ttl > 0 {
		exp := t.CreatedAt.Add(ttl)
		t.ExpiresAt = &exp
	}
	return secret, t
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p params) error {
	u, err := s.cfg.Store.UserByName(r.Context(), p["user"])
	if err != nil {
		return err
	}
	if u.ID != caller(r).ID {
		if err := s.authorize(r, chub.ActionUsersManage, "/chub/v1/users/"+u.Name); err != nil {
			return err
		}
	}
	var body struct {
		Name          string `json:"name"`
		ExpiresInDays int    `json:"expiresInDays"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			return err
		}
	}
	if body.ExpiresInDays < 0 {
		return chub.Invalid("InvalidExpiry", "expiresInDays", "expiresInDays must be 0 (never) or more, got %d", body.ExpiresInDays)
	}
	secret, t := NewToken(u.ID, body.Name, time.Duration(body.ExpiresInDays)*24*time.Hour)
	if err := s.cfg.Store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "user": u.Name, "token": secret, "expiresAt": t.ExpiresAt})
	return nil
}
